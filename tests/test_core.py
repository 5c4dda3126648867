import re

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import make_url, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from app import db as app_db
from app.extensions import db
from tests.conftest import migrated_url


def test_migrations_build_exactly_the_models_schema(app):
    """`flask db upgrade` on an empty database (done by the fixture) yields the models' schema."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_healthz_reports_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}


def test_healthz_answers_503_when_postgresql_is_down(make_app):
    from tests.support.pgcluster import free_port

    app = make_app(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
                   SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})
    assert app.test_client().get("/healthz").status_code == 503


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/campaigns/no-such-campaign")
    assert response.status_code == 404
    assert "We could not find that page" in response.get_data(as_text=True)


def test_pages_forbid_third_party_scripts_and_framing(client):
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_pages_load_nothing_from_other_hosts(client):
    from tests.factories import make_campaign

    make_campaign("twenty")
    for url in ("/", "/campaigns/twenty"):
        html = client.get(url).get_data(as_text=True)
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:css|js))"', html)
        assert assets and all(a.startswith("/static/") for a in assets)


def test_behind_a_trusted_proxy_the_forwarded_host_is_checked_and_links_use_public_url(
        make_app, database_url, app):
    from tests.factories import make_campaign
    from tests.support.flow import submit_gift

    make_campaign("twenty")
    proxied = make_app(database_url, TRUSTED_PROXIES=1, SERVER_NAME=None,
                       PUBLIC_URL="https://donate.levantwire.example")
    client = proxied.test_client()
    client.environ_base.update(
        HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="donate.levantwire.example",
        # Over https, CSRF protection also checks that the form came from this site.
        HTTP_REFERER="https://donate.levantwire.example/campaigns/twenty")
    response = submit_gift(client, "twenty")
    provider = proxied.extensions["payment_provider"]
    session = provider.load_session(response.headers["Location"].rsplit("/", 1)[1])
    assert session.success_url.startswith("https://donate.levantwire.example/thanks/")

    # A host the proxy passes on that is not ours is refused, whatever the page.
    client.environ_base["HTTP_X_FORWARDED_HOST"] = "evil.example"
    refused = client.get("/campaigns/twenty")
    assert refused.status_code == 400
    assert "not one of ours" in refused.get_data(as_text=True)


def test_sessions_survive_a_secret_key_rotation_through_the_fallbacks(make_app, database_url):
    def cookie_from(flask_app) -> str:
        client = flask_app.test_client()
        with client.session_transaction() as session:
            session["note"] = "kept"
        return client.get_cookie("session", domain="donate.test").value

    def read(flask_app, cookie: str) -> dict:
        client = flask_app.test_client()
        client.set_cookie("session", cookie, domain="donate.test")
        with client.session_transaction() as session:
            return dict(session)

    old = make_app(database_url, SECRET_KEY="old-secret")
    cookie = cookie_from(old)
    assert read(old, cookie) == {"note": "kept"}
    rotated = make_app(database_url, SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"])
    assert read(rotated, cookie) == {"note": "kept"}
    assert read(make_app(database_url, SECRET_KEY="new-secret"), cookie) == {}
    # Each app signs with its own keys, though the signer is built once per key set.
    assert read(old, cookie_from(rotated)) == {}


@pytest.fixture
def pings(monkeypatch):
    """The pings made before a pooled connection is used, of the apps ``make_app`` built."""
    made = []
    real = PGDialect_psycopg.do_ping
    monkeypatch.setattr(PGDialect_psycopg, "do_ping",
                        lambda dialect, connection: made.append(connection) or real(dialect,
                                                                                    connection))
    return made


def test_a_connection_used_a_moment_ago_is_taken_again_without_a_ping(make_app, database_url,
                                                                      pings, monkeypatch):
    client = make_app(database_url).test_client()
    for _ in range(3):
        assert client.get("/healthz").get_json()["database"] == "ok"
    assert pings == []  # one round trip a request less
    # One left in the pool a while is pinged first (a firewall may have cut it without a word).
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE", 0.0)
    assert client.get("/healthz").get_json()["database"] == "ok"
    assert len(pings) == (1 if database_url.startswith("postgresql") else 0)  # a file: never


def test_a_pooled_connection_its_server_ended_is_replaced_before_use(request, make_app, pings):
    url = migrated_url(request, "postgresql", "ended")
    app = make_app(url)
    client = app.test_client()

    def backend_pid() -> int:
        with app.app_context():
            return db.session.scalar(text("SELECT pg_backend_pid()"))

    assert client.get("/healthz").get_json()["database"] == "ok"
    pooled = backend_pid()  # the one connection in the pool, just used
    # The server ends it, as a restart or an administrator does (waiting until it is gone).
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False),
                         autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", [pooled]).fetchone()[0]

    # The next request is served: its connection was found closed before use and replaced.
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    assert len(pings) == 1
    assert backend_pid() != pooled


def test_healthz_reports_the_job_queue_when_there_is_one(make_app, database_url, redis_url):
    answer = make_app(database_url, REDIS_URL=redis_url).test_client().get("/healthz")
    assert (answer.status_code, answer.get_json()) == (
        200, {"status": "ok", "database": "ok", "queue": "ok"})
    # Redis down: gifts and webhook events are still taken, so degraded rather than down.
    down = make_app(database_url, REDIS_URL="redis://127.0.0.1:1/0")  # nothing on port 1
    answer = down.test_client().get("/healthz")
    assert (answer.status_code, answer.get_json()) == (
        200, {"status": "degraded", "database": "ok", "queue": "unreachable"})
