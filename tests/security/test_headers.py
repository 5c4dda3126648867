"""The headers every response carries, on every kind of page (public, form, redirect, signed
in, staff, error pages 400/403/404/405/413/429/500 and the untrusted-host page, JSON, a
download, a static file): a CSP with no 'unsafe-inline' that forbids framing, nosniff, a
Referrer-Policy, and HSTS when the site is served over https (SECURE_COOKIES=1). Pages carry no
inline script or style the CSP would block. And the flags of every cookie set on them, of the
session and "remember me" cookies in particular: HttpOnly, SameSite=Lax, Secure over https."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.giving.models import Gift
from app.staff.models import Role
from tests.factories import make_campaign
from tests.support.accounts import PASSWORD, RequestScopedClient, make_account
from tests.support.flow import hidden_value
from tests.support.staff import make_person, sign_in_as

ONE_YEAR = 365 * 24 * 3600


def page_types(app: Flask, base_url: str) -> dict[str, Callable]:
    """Each kind of response, as a request made by a fresh client (over ``base_url``)."""

    def client(who: str | None = None):
        app.test_client_class = RequestScopedClient
        c = app.test_client()
        c.environ_base["HTTP_REFERER"] = f"{base_url}/"  # CSRF over https checks it
        if who == "admin":
            sign_in_as(c, make_person("admin@levantwire.example", roles=(Role.ADMIN,)))
        elif who == "supporter":
            sign_in_as(c, make_person("reader@example.org"))
        return c

    def get(path, who=None):
        return lambda: client(who).get(path, base_url=base_url)

    def gift_form(**fields):
        def send():
            c = client()
            page = c.get("/campaigns/walk-appeal", base_url=base_url).get_data(as_text=True)
            data = {name: hidden_value(page, name) for name in
                    ("csrf_token", "submission_key", "currency")}
            data.update({"amount_choice": "2500", "frequency": "one_time", "name": "Noa Levi",
                         "email": "noa@example.org", **fields})
            return c.post("/campaigns/walk-appeal/give", data=data, base_url=base_url)
        return send

    def thanks():
        c = client()
        gift = db.session.scalar(select(Gift).order_by(Gift.id.desc()))
        return c.get(f"/thanks/{gift.public_id}", base_url=base_url)

    def checkout():
        location = gift_form()().headers["Location"]
        return client().get(location, base_url=base_url)

    def server_error():
        """A view that fails, answered as in production (the exception not propagated)."""
        view, propagate = app.view_functions["core.healthz"], app.config["PROPAGATE_EXCEPTIONS"]

        def fails():
            raise RuntimeError("a bug")

        app.view_functions["core.healthz"], app.config["PROPAGATE_EXCEPTIONS"] = fails, False
        try:
            return client().get("/healthz", base_url=base_url)
        finally:
            app.view_functions["core.healthz"], app.config["PROPAGATE_EXCEPTIONS"] = (
                view, propagate)

    return {
        "campaigns home": get("/"),
        "campaign page": get("/campaigns/walk-appeal"),
        "form with errors (422)": gift_form(email="not an address"),
        "redirect (303)": gift_form(),
        "sandbox checkout page": checkout,
        "thank-you page": thanks,
        "sign-in page": get("/account/signin"),
        "account page": get("/account", "supporter"),
        "account form page": get("/account/profile", "supporter"),
        "news page": get("/news/subscribe"),
        "staff page": get("/staff/", "admin"),
        "staff download (CSV)": get("/staff/reports/lapsed.csv", "admin"),
        "staff JSON": get("/staff/campaigns/walk-appeal/figures.json", "admin"),
        "not found (404)": get("/campaigns/no-such-campaign"),
        "forbidden (403)": get("/staff/", "supporter"),
        "expired form (400)": lambda: client().post("/campaigns/walk-appeal/give",
                                                     data={"name": "x"}, base_url=base_url),
        "too large (413)": lambda: client().post("/campaigns/walk-appeal/give",
                                                  data={"x": "y" * (300 * 1024)},
                                                  base_url=base_url),
        "method not allowed (405)": get("/webhooks/sandbox"),
        "server error (500)": server_error,
        "untrusted host (400)": lambda: client().get(
            "/", base_url=base_url.replace("donate.test", "evil.example")),
        "JSON (health)": get("/healthz"),
        "JSON (webhook refused)": lambda: client().post("/webhooks/sandbox", data=b"{}",
                                                         base_url=base_url),
        "static file": get("/static/css/app.css"),
        "favicon": get("/favicon.ico"),
    }


PAGE_TYPES = list(page_types(Flask(__name__), "http://donate.test"))


def check_common_headers(label: str, response) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = dict((d.split(" ", 1) + [""])[:2] for d in
                      (part.strip() for part in csp.split(";")) if d)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, label
    assert directives.get("default-src") == "'self'", label
    assert directives.get("script-src") == "'self'", label
    assert directives.get("style-src") == "'self'", label
    assert directives.get("object-src") == "'none'", label
    assert directives.get("frame-ancestors") == "'none'", label
    assert headers.get("X-Frame-Options") == "DENY", label
    assert headers.get("X-Content-Type-Options") == "nosniff", label
    assert headers.get("Referrer-Policy") == "same-origin", label


def check_no_inline_code(label: str, response) -> None:
    """What the CSP would block in a browser: inline scripts, style elements and attributes,
    event handler attributes."""
    if response.mimetype != "text/html":
        return
    html = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), label
    assert not re.search(r"<style\b", html), label
    assert not re.search(r"\sstyle\s*=", html), label
    assert not re.search(r"\son[a-z]+\s*=", html), label


@pytest.fixture
def pages(app):
    make_campaign("walk-appeal")

    def visit(target_app: Flask, base_url: str):
        with target_app.app_context():
            for label, request in page_types(target_app, base_url).items():
                response = request()
                response.close()
                yield label, response
    return visit


EXPECTED = {"form with errors (422)": 422, "redirect (303)": 303, "not found (404)": 404,
            "forbidden (403)": 403, "expired form (400)": 400, "too large (413)": 413,
            "method not allowed (405)": 405, "server error (500)": 500,
            "untrusted host (400)": 400, "JSON (webhook refused)": 400}


def check_cookies(label: str, response, *, secure: bool) -> int:
    """Every cookie the response sets: out of scripts' reach, not sent by other sites' forms,
    and over https only when the site is served over https. Returns how many it sets."""
    headers = response.headers.getlist("Set-Cookie")
    for header in headers:
        flags = {part.strip().lower() for part in header.split(";")[1:]}
        assert "httponly" in flags, (label, header)
        assert flags & {"samesite=lax", "samesite=strict"}, (label, header)
        assert ("secure" in flags) == secure, (label, header)
    return len(headers)


#: Pages that start a session (a form's CSRF token, a flashed message): the cookie check is not
#: empty.
SESSION_STARTED = {"campaign page", "sign-in page", "news page", "form with errors (422)",
                   "redirect (303)"}


def test_every_page_type_carries_the_security_headers_and_no_hsts_over_http(app, pages):
    seen, with_cookies = [], set()
    for label, response in pages(app, "http://donate.test"):
        assert response.status_code == EXPECTED.get(label, 200), (label,
                                                                   response.status_code)
        check_common_headers(label, response)
        check_no_inline_code(label, response)
        if check_cookies(label, response, secure=False):
            with_cookies.add(label)
        assert "Strict-Transport-Security" not in response.headers, label
        seen.append(label)
    assert seen == PAGE_TYPES
    assert SESSION_STARTED <= with_cookies, with_cookies


@pytest.fixture
def secure_app(monkeypatch, make_app, database_url, app):
    """The app as deployed behind https: SECURE_COOKIES=1 in the environment."""
    monkeypatch.setenv("SECURE_COOKIES", "1")
    return make_app(database_url)


def test_over_https_every_page_type_also_carries_hsts(secure_app, pages):
    with_cookies = set()
    for label, response in pages(secure_app, "https://donate.test"):
        assert response.status_code == EXPECTED.get(label, 200), (label,
                                                                   response.status_code)
        check_common_headers(label, response)
        check_no_inline_code(label, response)
        if check_cookies(label, response, secure=True):
            with_cookies.add(label)
        assert response.headers.get("Strict-Transport-Security") == (
            f"max-age={ONE_YEAR}; includeSubDomains"), label
    assert SESSION_STARTED <= with_cookies, with_cookies


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_the_too_many_requests_page_carries_them_too(monkeypatch, make_app, database_url, app,
                                                     secure):
    """429 needs the limits on (the suite's apps have them off): the card-update link is
    limited per client, whatever it answers."""
    if secure:
        monkeypatch.setenv("SECURE_COOKIES", "1")
    base_url = "https://donate.test" if secure else "http://donate.test"
    client = make_app(database_url, RATELIMIT_ENABLED=True,
                      RATELIMIT_CHECKOUT="1 per minute").test_client()
    assert client.get("/billing/card/made-up", base_url=base_url).status_code == 404
    response = client.get("/billing/card/made-up", base_url=base_url)
    assert response.status_code == 429
    check_common_headers("429", response)
    check_no_inline_code("429", response)
    check_cookies("429", response, secure=secure)
    assert ("Strict-Transport-Security" in response.headers) == secure


@pytest.mark.parametrize("env, expected", [
    ({"HSTS_MAX_AGE": "600"}, "max-age=600; includeSubDomains"),
    ({"HSTS_INCLUDE_SUBDOMAINS": "0"}, f"max-age={ONE_YEAR}"),
    ({"HSTS_MAX_AGE": "0"}, None),
])
def test_hsts_settings(monkeypatch, make_app, database_url, app, env, expected):
    monkeypatch.setenv("SECURE_COOKIES", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    response = make_app(database_url).test_client().get("/healthz",
                                                        base_url="https://donate.test")
    assert response.headers.get("Strict-Transport-Security") == expected


def cookie_flags(response, name: str) -> set[str]:
    """The attributes of the Set-Cookie header that sets ``name``: secure, httponly and
    samesite=..., lower case."""
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return {part.strip().lower() for part in header.split(";")[1:]}


def sign_in_remembered(target_app: Flask, base_url: str):
    """A real sign-in through the form with "Keep me signed in" ticked; returns its answer."""
    with target_app.app_context():
        make_account("noa@example.org")
        client = target_app.test_client()
        client.environ_base["HTTP_REFERER"] = f"{base_url}/account/signin"
        page = client.get("/account/signin", base_url=base_url).get_data(as_text=True)
        response = client.post("/account/signin", base_url=base_url, data={
            "csrf_token": hidden_value(page, "csrf_token"), "email": "noa@example.org",
            "password": PASSWORD, "remember": "y"})
        assert response.status_code == 303, response.get_data(as_text=True)[:2000]
        return response


def test_over_https_the_session_and_remember_cookies_are_secure_httponly_samesite(secure_app):
    response = sign_in_remembered(secure_app, "https://donate.test")
    for name in ("session", "remember_token"):
        flags = cookie_flags(response, name)
        assert {"secure", "httponly", "samesite=lax"} <= flags, (name, flags)


def test_over_http_the_cookies_are_httponly_and_samesite_but_not_secure(app):
    """Development (make_run, no https): a Secure cookie would never come back."""
    response = sign_in_remembered(app, "http://donate.test")
    for name in ("session", "remember_token"):
        flags = cookie_flags(response, name)
        assert {"httponly", "samesite=lax"} <= flags and "secure" not in flags, (name, flags)
