"""Links that leave the app are built on PUBLIC_URL, and requests for other hosts are refused.

The attack (issue 11): ``POST /account/signin/link`` sent with ``Host: evil.example`` and a
victim's address mailed the victim ``http://evil.example/account/link/<valid token>``. Here it
is sent the way an attacker would, as a raw HTTP request to a real server, and refused with
400 before anything is mailed; and every link in the account mails, in the card-update mail a
worker builds outside any request, and from the command line starts with PUBLIC_URL.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.giving.models import PlanStatus, RecurringPlan
from app.mail import OutboundEmail
from app.urls import trusted_hosts
from tests.conftest import BASE_CONFIG, migrated_url
from tests.factories import make_campaign
from tests.support.accounts import PASSWORD, RequestScopedClient, make_account, post_form, sign_in
from tests.support.flow import give, hidden_value
from tests.support.jobs import work
from tests.support.links import ELSEWHERE, assert_on_public_url
from tests.support.servers import InFlight, serving

# -- a real server, a raw request ---------------------------------------------------------------

@dataclass
class Served:
    app: Flask
    port: int
    outbox: Path
    in_flight: InFlight

    def request(self, method: str, path: str, *, host: str, cookie: str | None = None,
                form: dict | None = None, headers: dict | None = None
                ) -> http.client.HTTPResponse:
        """One raw HTTP/1.1 request with exactly this Host header (as curl -H 'Host: ...' or
        any script would send it); the response is read in full, and the work the app does
        after sending it (account mail) is done."""
        sent = {"Host": host, **(headers or {})}
        body = None
        if cookie:
            sent["Cookie"] = cookie
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            response.text = response.read().decode()
        finally:
            connection.close()
        self.in_flight.wait()
        return response

    def mails(self) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(OutboundEmail))

    def messages(self) -> list[EmailMessage]:
        from email import message_from_bytes, policy

        return [message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted(self.outbox.glob("*.eml"))]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory) -> Iterator[Served]:
    """The app on its own committed database, served by Werkzeug on 127.0.0.1 in a thread, as
    production serves it: no SERVER_NAME, PUBLIC_URL http://donate.test."""
    url = migrated_url(request, request.param, "security")
    outbox = tmp_path_factory.mktemp("security-outbox")
    app = create_app({**BASE_CONFIG, "SERVER_NAME": None, "SQLALCHEMY_DATABASE_URI": url,
                      "MAIL_OUTBOX_DIR": str(outbox)})
    with app.app_context():
        make_account("victim@example.org")
    in_flight = InFlight(app)
    with serving(app, in_flight) as server:
        yield Served(app=app, port=server.server_port, outbox=outbox, in_flight=in_flight)


def form_token(served: Served, path: str) -> tuple[str, str]:
    """The session cookie and CSRF token an attacker gets by opening the form on the real
    host first."""
    page = served.request("GET", path, host="donate.test")
    assert page.status == 200, page.text[:500]
    cookie = page.getheader("Set-Cookie").split(";", 1)[0]
    return cookie, hidden_value(page.text, "csrf_token")


@pytest.mark.parametrize("path, fields", [
    ("/account/signin/link", {"email": "victim@example.org"}),
    ("/account/reset", {"email": "victim@example.org"}),
    ("/account/signup", {"email": "victim@example.org", "password": PASSWORD,
                         "name": "Victim"}),
])
def test_a_forged_host_is_refused_and_nothing_is_mailed(served, path, fields):
    cookie, token = form_token(served, path)
    before = served.mails()

    forged = served.request("POST", path, host="evil.example", cookie=cookie,
                            form={"csrf_token": token, **fields})

    assert forged.status == 400
    assert "This address is not one of ours" in forged.text
    assert "http://donate.test" in forged.text  # where the site really is
    assert "evil.example" not in forged.text
    assert served.mails() == before
    # The same request on the real host is taken and mails the victim (so the refusal above
    # is the host's doing, not a broken form).
    taken = served.request("POST", path, host="donate.test", cookie=cookie,
                           form={"csrf_token": token, **fields})
    assert taken.status == 303, taken.text[:500]
    assert served.mails() == before + 1


def test_a_forged_host_gets_no_page_either(served):
    assert served.request("GET", "/account/signin", host="evil.example").status == 400
    assert served.request("GET", "/account/signin", host="evil.example:80").status == 400
    assert served.request("GET", "/account/signin", host="donate.test.evil.example"
                          ).status == 400
    assert served.request("GET", "/account/signin", host="donate.test").status == 200


def test_a_forwarded_host_without_a_trusted_proxy_changes_no_link(served):
    cookie, token = form_token(served, "/account/signin/link")
    response = served.request("POST", "/account/signin/link", host="donate.test", cookie=cookie,
                              form={"csrf_token": token, "email": "victim@example.org"},
                              headers={"X-Forwarded-Host": "evil.example",
                                       "X-Forwarded-Proto": "https"})
    assert response.status == 303
    text = served.messages()[-1].get_body(("plain",)).get_content()
    assert re.search(r"http://donate\.test/account/link/\S+", text), text
    assert "evil.example" not in text


# -- the hosts a request may name ---------------------------------------------------------------

def test_trusted_hosts_are_public_urls_host_and_the_extra_ones():
    assert trusted_hosts("https://donate.levantwire.example", "") == [
        "donate.levantwire.example"]
    assert trusted_hosts("https://donate.levantwire.example/giving",
                         "www.levantwire.example, .internal.example") == [
        "donate.levantwire.example", "www.levantwire.example", ".internal.example"]
    # On this machine (make run), both names of it open the app.
    assert trusted_hosts("http://127.0.0.1:5101", None) == ["127.0.0.1", "localhost"]
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        trusted_hosts("donate.levantwire.example", "")


def test_make_run_opens_at_127_0_0_1_and_localhost_but_no_other_name(make_app, database_url,
                                                                      app):
    local = make_app(database_url, SERVER_NAME=None, PUBLIC_URL="http://127.0.0.1:5101")
    client = local.test_client()
    for base in ("http://127.0.0.1:5101", "http://localhost:5101"):
        assert client.get("/account/signin", base_url=base).status_code == 200, base
    assert client.get("/account/signin", base_url="http://evil.example:5101"
                      ).status_code == 400


def test_extra_trusted_hosts_from_the_setting(make_app, database_url, app, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", "www.levantwire.example,.preview.levantwire.example")
    monkeypatch.setenv("PUBLIC_URL", "https://donate.levantwire.example")
    config = {k: v for k, v in BASE_CONFIG.items() if k not in ("PUBLIC_URL", "SERVER_NAME")}
    served = create_app({**config, "SQLALCHEMY_DATABASE_URI": database_url})
    client = served.test_client()
    for host in ("donate.levantwire.example", "www.levantwire.example",
                 "pr-7.preview.levantwire.example"):
        assert client.get("/account/signin", base_url=f"https://{host}").status_code == 200
    assert client.get("/account/signin", base_url="https://levantwire.example"
                      ).status_code == 400
    with served.app_context():
        db.engine.dispose()


# -- every link in mail and from the CLI on PUBLIC_URL ------------------------------------------

@pytest.fixture
def elsewhere(app):
    """PUBLIC_URL is not the host the requests name (donate.test, trusted besides it)."""
    app.config["PUBLIC_URL"] = ELSEWHERE
    app.config["TRUSTED_HOSTS"] = trusted_hosts(ELSEWHERE, "donate.test")
    return app


def test_account_mail_links_use_public_url_not_the_requests_host(elsewhere, outbox):
    app = elsewhere
    app.test_client_class = RequestScopedClient
    client = app.test_client()
    make_account("noa@example.org")

    post_form(client, "/account/signup", email="dana@example.org", password=PASSWORD,
              name="Dana")
    post_form(client, "/account/signup", email="noa@example.org", password=PASSWORD,
              name="Noa")  # already has an account: the "exists" mail, with three links
    post_form(client, "/account/signin/link", email="noa@example.org")
    post_form(client, "/account/reset", email="noa@example.org")
    sign_in(client)
    assert post_form(client, "/account/profile/email", page="/account/profile",
                     new_email="noa.new@example.org", password=PASSWORD).status_code == 303

    by_subject = {m["Subject"]: m for m in outbox()}
    expected = {
        "verify": "/account/verify/", "exists": "/account/signin",
        "sign-in": "/account/link/", "reset": "/account/reset/", "change": "/account/email/",
    }
    mails = {
        "verify": next(m for m in outbox() if m["To"] == "dana@example.org"),
        "exists": next(m for s, m in by_subject.items() if "already" in s.lower()),
        "sign-in": by_subject["Your sign-in link"],
        "reset": next(m for s, m in by_subject.items() if "password" in s.lower()),
        "change": next(m for m in outbox() if m["To"] == "noa.new@example.org"),
    }
    for name, message in mails.items():
        assert_on_public_url(message, expected[name])


def test_card_update_mail_built_by_a_worker_outside_any_request(elsewhere, make_app,
                                                                database_url, redis_url, outbox):
    """A failed renewal's event is stored by the webhook and applied by the RQ worker, in an
    application context of its own with no request and no SERVER_NAME: its card-update link
    is on PUBLIC_URL all the same."""
    make_campaign("twenty")
    assert give(elsewhere.test_client(), "twenty", frequency="monthly").status_code == 303
    plan = db.session.scalar(select(RecurringPlan))

    worker_app = make_app(database_url, REDIS_URL=redis_url, SERVER_NAME=None,
                          PUBLIC_URL=ELSEWHERE, JOBS_RETRY_INTERVALS=[])
    provider = worker_app.extensions["payment_provider"]
    failed = provider._event("evt_sbx_failed_2", "invoice.payment_failed", {
        "id": "in_sbx_failed_2", "object": "invoice", "status": "open",
        "billing_reason": "subscription_cycle", "attempt_count": 1,
        # Stripe will try again in three days: the plan can still be saved, so the mail
        # carries the card-update link.
        "next_payment_attempt": int(time.time()) + 3 * 86400,
        "amount_due": plan.total, "amount_paid": 0, "currency": plan.currency.lower(),
        "customer": plan.provider_customer_id,
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": plan.provider_subscription_id, "metadata": {}}}}, 0)
    payload, headers = provider.encode(failed)
    with worker_app.test_client() as client:
        answer = client.post("/webhooks/sandbox", data=payload, headers=headers,
                             base_url="https://giving.levantwire.example")
    assert answer.status_code == 200
    assert db.session.get(RecurringPlan, plan.id).status is PlanStatus.ACTIVE  # not yet

    work(worker_app)

    assert db.session.get(RecurringPlan, plan.id).status is PlanStatus.PAST_DUE
    [notice] = [m for m in outbox() if "could not be renewed" in m["Subject"]]
    assert_on_public_url(notice, "/billing/card/")


def test_cli_links_use_public_url(elsewhere):
    result = elsewhere.test_cli_runner().invoke(
        args=["users", "create", "--email", "admin@levantwire.example", "--role", "admin"])
    assert result.exit_code == 0, result.output
    [link] = re.findall(r"https?://\S+", result.output)
    assert link.startswith(f"{ELSEWHERE}/account/link/")


# -- make run ----------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def run_make(tmp_path, env_public_url: str | None = None, **variables) -> str:
    """``make run`` with a stand-in ``flask`` that prints its arguments and PUBLIC_URL instead
    of migrating and serving (its prerequisites taken as made)."""
    import os
    import shutil
    import subprocess

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "flask").write_text('#!/bin/sh\necho "flask $* PUBLIC_URL=$PUBLIC_URL"\n')
    (fake / "flask").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_URL", "PORT")}
    if env_public_url:
        env["PUBLIC_URL"] = env_public_url
    result = subprocess.run(
        [make, "-s", "-o", ".venv/.installed", "-o", "instance/secret_key", "run",
         f"BIN={fake}", *(f"{k}={v}" for k, v in variables.items())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_make_run_builds_links_on_its_port_and_says_how_to_become_staff(tmp_path):
    out = run_make(tmp_path, PORT="5101")
    lines = out.splitlines()
    served = lines[-1]
    assert served == "flask run --host 127.0.0.1 --port 5101 PUBLIC_URL=http://127.0.0.1:5101"
    assert "flask seed-demo PUBLIC_URL=http://127.0.0.1:5101" in lines
    # Before serving: the address to open, and the real command that makes a staff member.
    message = out[out.index("seed-demo"):out.index(served)]
    assert "open http://127.0.0.1:5101/" in message
    assert "PUBLIC_URL=http://127.0.0.1:5101" in message
    assert re.search(r"flask --app app users create --email \S+ --role admin", message)


def test_make_run_keeps_a_public_url_that_is_set(tmp_path):
    out = run_make(tmp_path, env_public_url="https://donate.levantwire.example", PORT="5101")
    assert out.splitlines()[-1].endswith("--port 5101 PUBLIC_URL=https://donate.levantwire.example")
    assert "open https://donate.levantwire.example/" in out
