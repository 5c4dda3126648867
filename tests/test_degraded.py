"""Degraded, not down (issue 12): with its Redis stopped, the app still takes gifts and sandbox
payments, signs readers in and honours emailed links, its rate limits count in each process's
memory, and /healthz says "degraded"; after a PostgreSQL restart, a request caught in it fails
cleanly and the next ones succeed without restarting the app. Against real servers: a Redis and
a PostgreSQL cluster of the test's own, stopped and restarted under it."""

from __future__ import annotations

import threading
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from app import create_app
from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.payments.models import ProviderEvent
from tests.conftest import BASE_CONFIG
from tests.factories import make_campaign
from tests.support.accounts import (
    RequestScopedClient,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
)
from tests.support.flow import give, submit_gift
from tests.support.pgcluster import PgCluster
from tests.support.redisserver import RedisServer


@pytest.fixture
def own_redis():
    """A Redis of this test's, which it may stop."""
    with RedisServer() as server:
        yield server


def test_with_redis_stopped_readers_still_give_pay_sign_in_and_follow_links(
        make_app, database_url, app, own_redis, outbox, caplog):
    flask_app = make_app(database_url, REDIS_URL=own_redis.url, RATELIMIT_ENABLED=True,
                         RATELIMIT_GIVE="3 per minute")
    flask_app.test_client_class = RequestScopedClient
    client = flask_app.test_client()
    make_campaign("twenty")
    make_account("noa@example.org")
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert submit_gift(client, "twenty", amount="5000").status_code == 303  # counted in Redis

    own_redis.stop()

    assert client.get("/healthz").get_json() == {
        "status": "degraded", "database": "ok", "queue": "unreachable"}
    # A gift, paid on the sandbox's page: its event, which Redis cannot take, is applied by
    # this process once the answer is sent, as the embedded default does.
    paid = give(client, "twenty", amount="5000")
    assert paid.status_code == 303, paid.get_data(as_text=True)[:500]
    paid.close()  # the answer sent, as a server closes it
    assert "committed but not queued, run here" in caplog.text
    gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    assert gift.status is GiftStatus.PAID
    assert db.session.scalar(select(func.count()).where(
        ProviderEvent.processed_at.is_(None))) == 0
    assert [m["Subject"] for m in mail_to(outbox, "noa@example.org")] == [
        "Thank you for your gift to A test appeal"]
    # The donation form's limit now counts in this process's memory, and still holds.
    answers = [submit_gift(client, "twenty", amount="5000").status_code for _ in range(3)]
    assert answers == [303, 303, 429]
    assert "falling back" in caplog.text
    # Sign-in by password, and by an emailed link (its job runs here: no queue to take it).
    assert sign_in(client).headers["Location"] == "/account"
    post_form(client, "/account/signout", page="/account")
    assert post_form(client, "/account/signin/link", email="noa@example.org").status_code == 303
    [mail] = [m for m in mail_to(outbox, "noa@example.org") if m["Subject"] == "Your sign-in link"]
    link = link_in(mail, "/account/link/")
    assert post_form(client, link).headers["Location"] == "/account"
    assert client.get("/account").status_code == 200


@pytest.fixture
def own_postgres(request):
    """A PostgreSQL cluster of this test's, migrated, which it restarts."""
    cluster = PgCluster().start()
    request.addfinalizer(cluster.stop)
    url = cluster.create_database("restart")
    migrating = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    return cluster, url


def test_after_a_postgresql_restart_the_next_requests_succeed(own_postgres, tmp_path):
    cluster, url = own_postgres
    flask_app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url,
                            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
                            # Errors answered as a server answers them, not raised to the test.
                            "PROPAGATE_EXCEPTIONS": False})
    started, release = threading.Event(), threading.Event()

    @flask_app.get("/test/in-flight")
    def in_flight():  # a request holding its connection while the server restarts
        db.session.execute(text("SELECT 1"))
        started.set()
        release.wait(30)
        db.session.execute(text("SELECT 1"))
        return "finished"

    with flask_app.app_context():
        make_campaign("twenty")
        db.session.commit()
    client = flask_app.test_client()
    assert client.get("/healthz").status_code == 200  # a pooled connection now

    cluster.restart()

    # The pooled connection is dead: it is found so before use and replaced.
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    answers = []
    caught = threading.Thread(target=lambda: answers.append(
        flask_app.test_client().get("/test/in-flight")))
    caught.start()
    assert started.wait(30)

    cluster.restart()
    release.set()
    caught.join(30)

    # The request caught in the restart got the error page, not a hang or a half answer...
    [answer] = answers
    assert answer.status_code == 500
    # ... and every later one works on new connections, the app untouched.
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    assert client.get("/campaigns/twenty").status_code == 200
    assert submit_gift(client, "twenty", amount="5000").status_code == 303
    with flask_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Gift)) == 1
        db.session.close()
        db.engine.dispose()


def test_a_worker_started_while_redis_is_down_waits_for_it(caplog):
    """`flask jobs worker` under systemd or honcho: started before Redis (a reboot), it
    waits rather than exit."""
    import time

    from redis import Redis

    from app.jobs import _wait_for_redis

    server = RedisServer()  # its port chosen, nothing listening on it yet
    connection = Redis.from_url(server.url, socket_connect_timeout=1)
    waiting = threading.Thread(target=_wait_for_redis, args=(connection,),
                               kwargs={"every": 0.2}, daemon=True)
    try:
        waiting.start()
        time.sleep(0.6)
        assert waiting.is_alive()  # still waiting, Redis down
        server.start()
        waiting.join(30)
        assert not waiting.is_alive()  # Redis up: it went on
        assert "Redis unreachable" in caplog.text and "trying again in 0.2 s" in caplog.text
    finally:
        connection.close()
        server.stop()


# What the jobs of the next test do, looked up by name by the worker (it runs them in its own
# process: here, this one).
_lost = {}


def stop_redis_for_a_moment() -> None:
    """A job during which Redis goes away: stopped now, started again (empty, as a restart
    without persistence leaves it) a moment later, with one new job queued."""
    from rq import Queue

    server, queue = _lost["server"], Queue(_lost["queue"], connection=_lost["connection"])
    server.process.terminate()
    server.process.wait(10)

    def back() -> None:
        # A plain sleep, not a threading.Timer: under faketime a timed wait between threads
        # never ends (tests/conftest.py), a sleep does.
        time.sleep(0.5)
        server.root.mkdir(exist_ok=True)
        server.start()
        queue.enqueue(f"{__name__}.record_that_it_ran")

    _lost["restart"] = threading.Thread(target=back)
    _lost["restart"].start()


def record_that_it_ran() -> None:
    _lost["ran"] = True


def test_a_worker_that_loses_redis_while_a_job_runs_goes_on_once_it_is_back(
        make_app, tmp_path, own_redis, caplog):
    """RQ quits when Redis goes away mid-job (finishing the job fails); `flask jobs worker`
    waits for Redis and works on instead of ending the process (which would end every process
    `make serve` runs)."""
    from redis import Redis
    from redis.client import PubSubWorkerThread
    from rq import Queue

    flask_app = make_app(f"sqlite:///{tmp_path / 'jobs.db'}", REDIS_URL=own_redis.url,
                         JOBS_RETRY_INTERVALS=[])
    connection = Redis.from_url(own_redis.url)
    _lost.update(server=own_redis, queue=flask_app.config["JOBS_QUEUE"], connection=connection)
    try:
        Queue(_lost["queue"], connection=connection).enqueue(f"{__name__}.stop_redis_for_a_moment")
        result = flask_app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
        assert result.exit_code == 0, result.output
        assert _lost.get("ran"), caplog.text
        assert "starting the worker again" in caplog.text
        # Nothing of the lost worker is left behind: its command channel's reader ended too.
        readers = [t for t in threading.enumerate() if isinstance(t, PubSubWorkerThread)]
        for reader in readers:
            reader.join(10)
        assert not [t for t in readers if t.is_alive()]
    finally:
        if "restart" in _lost:
            _lost["restart"].join(30)
        connection.close()
        _lost.clear()
