import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db


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


def test_behind_a_trusted_proxy_links_use_the_forwarded_scheme_and_host(make_app,
                                                                       database_url, app):
    from tests.factories import make_campaign
    from tests.support.flow import submit_gift

    make_campaign("twenty")
    proxied = make_app(database_url, TRUSTED_PROXIES=1, SERVER_NAME=None)
    client = proxied.test_client()
    client.environ_base.update(
        HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="donate.levantwire.example",
        # Over https, CSRF protection also checks that the form came from this site.
        HTTP_REFERER="https://donate.levantwire.example/campaigns/twenty")
    response = submit_gift(client, "twenty")
    provider = proxied.extensions["payment_provider"]
    session = provider.load_session(response.headers["Location"].rsplit("/", 1)[1])
    assert session.success_url.startswith("https://donate.levantwire.example/thanks/")
