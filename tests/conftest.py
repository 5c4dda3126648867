"""Fixtures: every database test runs on SQLite and on a throwaway PostgreSQL cluster.

The schema is built once per backend by the Alembic migrations; each test then runs inside a
transaction that is rolled back at the end, with the app's commits turned into savepoints.
"""

from __future__ import annotations

import os
import shutil
from types import CodeType

import pytest
from flask import Flask
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from jinja2 import BytecodeCache
from sqlalchemy import make_url
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.db import utcnow
from app.extensions import db, limiter
from tests.support.pgcluster import PgCluster

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "SERVER_NAME": "donate.test",
    # Links that leave the app are built on PUBLIC_URL; its host is the one requests may name.
    "PUBLIC_URL": "http://donate.test",
    "RATELIMIT_ENABLED": False,
    # Pages read the ledger on every request; the recheck window has tests of its own.
    "CAMPAIGN_PAGE_RECHECK_SECONDS": 0,
    # The suite's apps live for the whole session; answers kept from one test must not reach
    # the next (tests/embeds/test_edge.py builds its own apps with it on).
    "EDGE_CACHE": False,
    # Argon2 at its cheapest: the suite hashes many passwords; the cost is no part of a test.
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_KIB": 8,
    "ARGON2_PARALLELISM": 1,
}


#: Tests of ten seconds or more on a loaded machine, run first: under pytest-xdist (``make
#: test``) one handed out near the end keeps its worker busy long after the others are done
#: (the topology's 65 s came when 94% of the suite had been handed out).
LONG_TESTS = (
    "tests/production/test_topology.py::",
    "tests/security/test_route_fuzz.py::test_hostile_input_gets_no_5xx_and_writes_nothing",
    "tests/finance/test_receipts.py::test_concurrent_processes_leave_no_gap_and_no_duplicate",
    "tests/test_migrations.py::test_every_migration_goes_down_and_up_on_a_populated_database",
    "tests/finance/test_imports.py::test_the_demos_export_round_trips",
    "tests/payments/test_stripe.py::test_one_time_scenario_converges_whatever_the_order",
    "tests/payments/test_job_queue.py::test_events_in_any_order_converge_through_the_queues",
    "tests/test_cli_writes.py::test_process_pending_twice_at_once_applies_each_event_once",
    "tests/deploy/test_deploy_files.py::test_gunicorns_access_log_names_no_path",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``LONG_TESTS`` first; the rest in pytest's order (grouped by the session fixtures'
    parameters, the backends), after that order is made."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_TESTS))


@pytest.fixture(scope="session", autouse=True)
def templates_fail_loudly():
    """Every template any test renders is checked for names that hide its context's variables
    (``tests.support.templates``); the apps themselves render with ``StrictUndefined`` under
    ``TESTING`` (``app.templating``)."""
    from flask import before_render_template

    from tests.support.templates import check_render

    before_render_template.connect(check_render)
    yield
    before_render_template.disconnect(check_render)


class SharedTemplateCode(BytecodeCache):
    """Jinja's compiled templates kept in memory for every app a test process builds: each app
    (``make_app``, the commands' and servers' own) otherwise compiled every template it
    rendered again, a twentieth of the suite's time. Jinja keys each template by its name and
    file and checks its source's checksum, so a template a test changes is compiled anew."""

    def __init__(self) -> None:
        self.code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket) -> None:
        checksum, code = self.code.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = (bucket.checksum, bucket.code)


@pytest.fixture(scope="session", autouse=True)
def templates_compiled_once():
    """Every app's Jinja environment gets the process's :class:`SharedTemplateCode`."""
    shared = SharedTemplateCode()
    create = Flask.create_jinja_environment

    def create_sharing(app):
        environment = create(app)
        environment.bytecode_cache = shared
        return environment

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "create_jinja_environment", create_sharing)
        yield


#: The suite runs under Debian's ``faketime`` (a shifted clock: README, "Tests").
UNDER_FAKETIME = "faketime" in os.environ.get("LD_PRELOAD", "")


@pytest.fixture(scope="session", autouse=True)
def threads_that_end_under_faketime():
    """Under ``faketime`` (the suite run on a shifted clock), a timed wait between threads never
    ends. Two such waits would hang the run, and only there are they taken out:

    - an RQ worker's ``work(burst=True)`` joins the thread that listens for remote commands
      (the ``rq`` CLI's stop/shutdown, which no test sends): workers do without it;
    - at exit Python joins the timer thread of Flask-Limiter's in-memory storage (apps with
      rate limits on): timers still waiting are cancelled at the end of the session.

    Everything a job or a request does is unchanged."""
    import threading

    if not UNDER_FAKETIME:
        yield
        return
    from app.jobs import AppWorker

    saved = AppWorker.subscribe, AppWorker.unsubscribe
    AppWorker.subscribe = AppWorker.unsubscribe = lambda self: None
    yield
    AppWorker.subscribe, AppWorker.unsubscribe = saved
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


def new_database_url(request, backend: str, name: str) -> str:
    """A new, empty database on ``backend`` (no tables)."""
    if backend == "sqlite":
        return f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp(name)}/test.db"
    return request.getfixturevalue("pg_cluster").create_database(name)


@pytest.fixture(scope="session")
def schema_templates() -> dict[str, str]:
    """Per backend, the URL of a database migrated to the latest schema once a session, which
    :func:`migrated_url` copies (running every migration took seconds each time)."""
    return {}


def migrated_url(request, backend: str, name: str) -> str:
    """A new database on ``backend`` at the latest schema: a copy of the session's migrated
    template (SQLite: its file; PostgreSQL: ``CREATE DATABASE ... TEMPLATE``)."""
    templates = request.getfixturevalue("schema_templates")
    if backend not in templates:
        template = new_database_url(request, backend, "schema_template")
        app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": template})
        with app.app_context():
            upgrade()
            db.engine.dispose()  # closes every connection: SQLite folds its WAL in
        templates[backend] = template
    if backend == "sqlite":
        url = new_database_url(request, backend, name)
        shutil.copyfile(make_url(templates[backend]).database, make_url(url).database)
        return url
    return request.getfixturevalue("pg_cluster").create_database(
        name, template=make_url(templates[backend]).database)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request):
    return migrated_url(request, request.param, "suite")


@pytest.fixture
def make_app(tmp_path):
    """Build an app on a given database URL with test settings (and any overrides)."""
    apps = []

    def build(url: str, **overrides):
        app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url,
                          "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"), **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_app(request, make_app):
    """For the tests of the migrations themselves: an app, inside its application context, on
    a new database of its own (each backend) with no tables yet. The test moves the schema up
    and down (``flask_migrate.upgrade``/``downgrade``; ``tests.support.migrations``)."""
    app = make_app(new_database_url(request, request.param, f"migrations_{request.param}"))
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture(scope="session")
def suite_apps():
    """One app per suite database, shared by the tests that take ``app``: building an app
    compiles every URL rule (a third of a second), which was most of the suite's time. Tests
    that need other settings at creation build their own with ``make_app``."""
    apps: dict[str, tuple[Flask, dict]] = {}
    yield apps
    for app, _ in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(database_url, suite_apps, tmp_path):
    """The suite's app on ``database_url``, inside a transaction rolled back after the test.
    What a test may change on it (settings, the test client class, Jinja globals and loader,
    the extensions' state) is put back afterwards; each test has its own outbox folder."""
    if database_url not in suite_apps:
        app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
        suite_apps[database_url] = (app, dict(vars(limiter)))
    app, limiter_state = suite_apps[database_url]
    # Flask-Limiter keeps its settings (enabled, storage) on the one Limiter object, which
    # every app built since (make_app) re-initialised: give it back this app's.
    vars(limiter).clear()
    vars(limiter).update(limiter_state)
    saved = (dict(app.config), app.test_client_class, app.jinja_env.loader,
             dict(app.jinja_env.globals), dict(app.extensions))
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "outbox")
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        # A plain SQLAlchemy Session: Flask-SQLAlchemy's own picks the engine by bind key and
        # would step around the test's connection.
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id)
        try:
            yield app
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()
            config, app.test_client_class, app.jinja_env.loader, globals_, extensions = saved
            app.config.clear()
            app.config.update(config)
            app.jinja_env.globals.clear()
            app.jinja_env.globals.update(globals_)
            # What the app made lazily (the campaign pages' cache) knew rolled-back rows.
            app.extensions.clear()
            app.extensions.update(extensions)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def renders(monkeypatch):
    """The slugs of the campaign pages rendered (not served from the pages' cache), in order."""
    from app.campaigns import views as campaign_views

    calls = []
    render = campaign_views._render

    def counting(*args, **kwargs):
        calls.append(args[0].slug)
        return render(*args, **kwargs)

    monkeypatch.setattr(campaign_views, "_render", counting)
    return calls


@pytest.fixture
def outbox(app, tmp_path):
    """The .eml files written so far, parsed."""
    from email import message_from_bytes, policy

    def read():
        folder = tmp_path / "outbox"
        return [message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted(folder.glob("*.eml"))] if folder.exists() else []

    return read


@pytest.fixture
def now():
    return utcnow()


@pytest.fixture(scope="session")
def redis_server():
    """A real Redis on 127.0.0.1 for the job queue and rate-limit tests."""
    from tests.support.redisserver import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    """The server's URL, emptied after the test."""
    from redis import Redis

    yield redis_server.url
    with Redis.from_url(redis_server.url) as connection:
        connection.flushall()
