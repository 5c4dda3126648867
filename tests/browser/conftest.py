"""Browser fixtures: the app served over real HTTP on committed data, and headless Chromium.

The rest of the suite wraps each test in a rolled-back transaction; a browser talks to a separate
server thread through its own connections, so here the data is committed to a database made for
these tests alone (one per backend), and each test creates the campaign it gives to.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``make test``), driven by Playwright's
sync API; ``playwright install`` is never needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from app import create_app
from app.extensions import db
from tests.conftest import migrated_url
from tests.factories import make_campaign
from tests.support.servers import InFlight, serving, serving_wsgi

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
# Fail in seconds, not after Playwright's default 30: every page here is local.
TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    app: Flask
    url: str
    backend: str
    outbox: Path
    # Mail the app sends once a response is out (account mail) is in the outbox after .wait().
    in_flight: InFlight

    def create_campaign(self, **fields) -> str:
        """Commit a new live campaign (``tests.factories.make_campaign``); returns its slug."""
        slug = fields.pop("slug", f"appeal-{uuid.uuid4().hex[:10]}")
        with self.app.app_context():
            make_campaign(slug, **fields)
            db.session.commit()
        return slug


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each browser test runs on SQLite (what ``make run`` serves); those marked
    ``postgresql_too`` run on PostgreSQL as well (see :func:`live_server`)."""
    if "live_server" in metafunc.fixturenames:
        backends = (["sqlite", "postgresql"]
                    if metafunc.definition.get_closest_marker("postgresql_too") else ["sqlite"])
        metafunc.parametrize("live_server", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def live_server(request, tmp_path_factory) -> Iterator[LiveServer]:
    """The app on a freshly migrated database (``request.param``: the backend), served by
    Werkzeug in a background thread.

    A browser test is about pages, scripts and layout; what the databases do differently is
    proved by the test-client tests of the same flows, which run on both. So each browser test
    runs once, on SQLite, and only a test whose page shows a figure the database computes
    (sums, counts, dates in the organisation's zone, ordering) is marked
    ``@pytest.mark.postgresql_too("why")`` to run on PostgreSQL as well: a page of the
    PostgreSQL-served app is still seen in a browser. The reasons are on the markers
    (``grep -rn postgresql_too tests/browser``).
    """
    url = migrated_url(request, request.param, "browser")
    outbox = tmp_path_factory.mktemp("browser-outbox")
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "browser-test-secret-key",
        "RATELIMIT_ENABLED": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 8,
        "ARGON2_PARALLELISM": 1,
        "SQLALCHEMY_DATABASE_URI": url,
        "MAIL_OUTBOX_DIR": str(outbox),
    })
    in_flight = InFlight(app)
    with serving(app, in_flight) as server:
        # Links in mail and from the CLI lead to this server: its port is known only now.
        app.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
        yield LiveServer(app=app, url=app.config["PUBLIC_URL"],
                         backend=request.param, outbox=outbox, in_flight=in_flight)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def cookieless_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium told to block third-party cookies, as a growing share of readers' are (the
    embeds and prompts on another site's article)."""
    blocking = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--test-third-party-cookie-phaseout"])
    yield blocking
    blocking.close()


@contextmanager
def page_of(context: BrowserContext) -> Iterator[Page]:
    """A page in ``context``, a test's own (closed after), failing in seconds; uncaught
    JavaScript errors fail the test."""
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


@contextmanager
def embedding_site(live_server: LiveServer, wsgi) -> Iterator[str]:
    """``wsgi`` as a newsroom's own site on 127.0.0.2 (another origin than the live server's),
    the live server's EMBED_ORIGINS until the block ends; the site's origin."""
    with serving_wsgi(wsgi, host="127.0.0.2") as server:
        origin = f"http://127.0.0.2:{server.server_port}"
        saved = live_server.app.config["EMBED_ORIGINS"]
        live_server.app.config["EMBED_ORIGINS"] = origin
        try:
            yield origin
        finally:
            live_server.app.config["EMBED_ORIGINS"] = saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser, live_server, request, tmp_path) -> Iterator[Page]:
    """A fresh phone-sized browser context and page on the live server.

    Uncaught JavaScript errors fail the test. On failure a screenshot is saved in the test's
    temporary folder (its path is printed with the test's output).
    """
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda error: js_errors.append(f"{page.url}: {error}"))
    try:
        yield page
        if request.node.stash.get(_CALL_FAILED, False) and not page.is_closed():
            path = tmp_path / "failure.png"
            page.screenshot(path=path, full_page=True)
            print(f"screenshot of the failing page: {path}")
    finally:
        context.close()
    assert not js_errors, f"uncaught JavaScript errors: {js_errors}"

