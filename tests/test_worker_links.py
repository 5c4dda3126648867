"""Every mail with links that an RQ worker builds, outside any request and with no SERVER_NAME
(as in production), links to PUBLIC_URL (issue 12: the card-update mail of a failed renewal
raised RuntimeError in `flask jobs worker` and was dropped). The work goes through the test
Redis and a real RQ worker (``work``: SimpleWorker, burst); requests name another host than
PUBLIC_URL's, which no link may carry."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift, PlanStatus, RecurringPlan
from app.news.demo import seed_news
from app.news.models import Article
from app.schedule import Scheduler
from app.templating import org_zone
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.accounts import PASSWORD, RequestScopedClient, make_account, post_form
from tests.support.flow import submit_gift
from tests.support.jobs import work
from tests.support.links import ELSEWHERE, assert_on_public_url, links_of
from tests.support.news import confirmed_subscriber
from tests.support.stripe import deliver, serve_invoice, stripe_config


@pytest.fixture
def worker_app(make_app, database_url, app, httpserver, redis_url):
    """Jobs on the test Redis; links on PUBLIC_URL, requests for "localhost" (the test
    client's host), no SERVER_NAME for url_for to fall back on."""
    flask_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                         REDIS_URL=redis_url, JOBS_RETRY_INTERVALS=[], SERVER_NAME=None,
                         PUBLIC_URL=ELSEWHERE, TRUSTED_HOSTS="localhost",
                         SCHEDULE_DAILY_EMAIL_AT="00:00", SCHEDULE_SANDBOX_RENEW_SECONDS=0,
                         SCHEDULE_SETTLE_FEES_SECONDS=0, SCHEDULE_PROCESS_PENDING_SECONDS=0,
                         SCHEDULE_ROLLUP_SECONDS=0, SCHEDULE_STRIPE_SYNC_SECONDS=0,
                         SCHEDULE_SEND_MAIL_SECONDS=0)
    flask_app.test_client_class = RequestScopedClient
    with flask_app.app_context():
        make_campaign("twenty")
        yield flask_app


def by_subject(outbox) -> dict:
    return {message["Subject"]: message for message in outbox()}


def test_the_mails_of_a_monthly_gift_built_by_a_worker(worker_app, httpserver, outbox):
    client = worker_app.test_client()
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {**so.checkout_session(gift="x", amount=5000, mode="subscription"),
         "url": "https://checkout.stripe.test/x"})
    assert submit_gift(client, "twenty", amount="5000", frequency="monthly",
                       dedication="honour", dedication_name="Savta Rivka",
                       dedication_email="rivka@example.org").status_code == 303
    g = db.session.scalar(select(Gift.public_id))
    serve_invoice(httpserver, invoice_id="in_test_1", intent="pi_test_sub_1", amount=5000)
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, mode="subscription", subscription="sub_test_1",
            invoice="in_test_1")),
        so.event("invoice.paid", so.invoice(gift=g, amount=5000)),
        # A renewal failed; Stripe will try again: the card-update link.
        so.event("invoice.payment_failed", so.invoice(
            invoice_id="in_test_2", gift=g, amount=5000, billing_reason="subscription_cycle",
            status="open", attempt_count=1, next_payment_attempt=so.NOW + 3 * 86400)),
        # ... then Stripe ended the plan: a link to give again.
        so.event("customer.subscription.deleted", so.subscription(
            gift=g, amount=5000, status="canceled", canceled_at=so.NOW + 40 * 86400,
            reason="payment_failed")),
    ]
    for evt in events:
        assert deliver(client, evt).status_code == 200
        work(worker_app)  # each applied by the worker, in its own application context

    assert db.session.scalar(select(RecurringPlan.status)) is PlanStatus.CANCELED
    mails = by_subject(outbox)
    assert_on_public_url(mails["Thank you for your gift to A test appeal"], "/account/")
    [note] = [m for m in outbox() if m["To"] == "rivka@example.org"]
    assert all(link.startswith(f"{ELSEWHERE}/") for link in links_of(note)), links_of(note)
    assert_on_public_url(mails["Your gift to independent journalism could not be renewed"],
                         "/billing/card/")
    assert_on_public_url(mails["Your monthly gift to A test appeal has ended"],
                         "/campaigns/twenty")


def test_account_and_news_mails_built_by_a_worker(worker_app, outbox):
    client = worker_app.test_client()
    make_account("noa@example.org")
    for path, fields in (("/account/signup", {"email": "dana@example.org",
                                              "password": PASSWORD, "name": "Dana"}),
                         ("/account/signin/link", {"email": "noa@example.org"}),
                         ("/account/reset", {"email": "noa@example.org"})):
        assert post_form(client, path, **fields).status_code == 303, path
    assert outbox() == []  # each request queued a job; the worker looks up, writes, mails
    work(worker_app)
    [verify] = [m for m in outbox() if m["To"] == "dana@example.org"]
    assert_on_public_url(verify, "/account/verify/")
    mails = by_subject(outbox)
    assert_on_public_url(mails["Your sign-in link"], "/account/link/")
    [reset] = [m for s, m in mails.items() if "password" in s.lower()]
    assert_on_public_url(reset, "/account/reset/")

    # The daily news email, started by the scheduler and sent by the worker.
    seed_news(utcnow(), org_zone())
    confirmed_subscriber("reader@example.org")
    db.session.commit()
    assert [how for _, _, how in Scheduler(worker_app).run_due()] == ["queued"]
    work(worker_app)
    [daily] = [m for m in outbox() if m["To"] == "reader@example.org"]
    # Its stories link to the newsroom's site (the feed's links); every other link is ours.
    stories = set(db.session.scalars(select(Article.link)))
    ours = [link for link in links_of(daily) if link not in stories]
    assert len(ours) < len(links_of(daily))
    assert all(link.startswith(f"{ELSEWHERE}/") for link in ours), ours
    assert any(link.startswith(f"{ELSEWHERE}/news/unsubscribe/") for link in ours), ours
    assert daily["List-Unsubscribe"].startswith(f"<{ELSEWHERE}/news/unsubscribe/")
