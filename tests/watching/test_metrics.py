"""GET /metrics: who may read it, requests counted by route, and the figures read from the
database and the job queue at each scrape."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from rq import Queue
from sqlalchemy import select

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.mail import OutboundEmail
from app.news.models import Digest, DigestSend, NewsSubscriber, SendStatus
from app.payments.models import ProviderEvent
from tests.factories import make_campaign
from tests.support.flow import give, pay, submit_gift
from tests.support.metrics import samples, value


def scrape(client, **kwargs) -> dict[tuple[str, tuple], float]:
    """Each sample of /metrics: {(name, sorted labels): value}."""
    answer = client.get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.status_code
    assert answer.content_type.startswith("text/plain")
    return samples(answer.get_data(as_text=True))


def outside(address: str = "203.0.113.5") -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_only_loopback_clients_or_the_bearer_token_read_it(client, app):
    assert client.get("/metrics").status_code == 200
    for loopback in ("::1", "::ffff:127.0.0.1", "127.0.0.2"):
        assert client.get("/metrics", **outside(loopback)).status_code == 200, loopback
    for stranger in ("203.0.113.5", "10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"):
        assert client.get("/metrics", **outside(stranger)).status_code == 404, stranger
    # With a token, the token lets anyone in; a wrong or missing one is still a 404.
    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"},
                      **outside()).status_code == 200
    for header in ("Bearer s3cret-tokeN", "Bearer s3cret-token-and-more", "Basic s3cret-token",
                   "s3cret-token", ""):
        answer = client.get("/metrics", headers={"Authorization": header}, **outside())
        assert answer.status_code == 404, header
    assert client.get("/metrics").status_code == 200  # loopback still reads it


def test_behind_a_proxy_the_client_address_decides(make_app, database_url):
    """nginx on the same machine connects from 127.0.0.1: with TRUSTED_PROXIES=1 the client's
    own address (X-Forwarded-For) is the one checked, so the world cannot read it through
    nginx."""
    client = make_app(database_url, TRUSTED_PROXIES=1).test_client()
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
    assert proxied.status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_requests_are_counted_by_route_and_status_never_by_path(client, app):
    make_campaign("twenty")
    before = scrape(client)
    route = "/campaigns/<slug>"
    for slug in ("twenty", "twenty", "no-such-appeal"):
        client.get(f"/campaigns/{slug}")
    client.get("/no/such/page")
    after = scrape(client)

    def delta(**labels) -> float:
        key = ("newsfund_http_requests_total", tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta(route=route, method="GET", status="200") == 2
    assert delta(route=route, method="GET", status="404") == 1
    assert delta(route="(no route)", method="GET", status="404") == 1
    assert delta(route="/metrics", method="GET", status="200") == 1  # the first scrape
    durations = [key for key in after if key[0] == "newsfund_http_request_duration_seconds_count"]
    assert ("route", route) in {label for _, labels in durations for label in labels}
    paths = [labels for _, labels in after if any("twenty" in str(v) or "no/such" in str(v)
                                                   for _, v in labels)]
    assert paths == []


def test_the_figures_are_read_from_the_database(client, app):
    make_campaign("twenty")
    give(client, "twenty")  # paid: its events applied, the receipt mailed
    give(client, "twenty", amount="5000")
    started = submit_gift(client, "twenty")  # declined at the checkout: still pending
    assert pay(client, started.headers["Location"], card="4000 0000 0000 0002").status_code == 402
    now = utcnow()
    year = db.session.scalar(select(Receipt.year))  # this year, in the organisation's zone
    applied = db.session.query(ProviderEvent).count()
    assert applied > 0
    db.session.add_all([
        ProviderEvent(provider="sandbox", event_id="evt_waits_1", type="invoice.paid",
                      payload="{}", received_at=now - timedelta(hours=2)),
        ProviderEvent(provider="sandbox", event_id="evt_waits_2", type="invoice.paid",
                      payload="{}", received_at=now - timedelta(minutes=5)),
        ProviderEvent(provider="sandbox", event_id="evt_parked", type="invoice.paid",
                      payload="{}", received_at=now - timedelta(minutes=90), parked_at=now,
                      note="subscription sub_1 is not known yet"),
        ProviderEvent(provider="sandbox", event_id="evt_failed", type="invoice.paid",
                      payload="{}", received_at=now - timedelta(minutes=30), attempts=3,
                      last_error="ProviderError: Stripe did not answer"),
        ProviderEvent(provider="sandbox", event_id="evt_not_ours", type="charge.refunded",
                      payload="{}", received_at=now, processed_at=now, note="not ours"),
        OutboundEmail(dedupe_key="test:failing", recipient="a@example.org", subject="s",
                      message="m", attempts=2, last_error="SMTPServerDisconnected"),
        OutboundEmail(dedupe_key="test:queued", recipient="b@example.org", subject="s",
                      message="m"),
        OutboundEmail(dedupe_key=f"statement:{year - 1}:1", recipient="a@example.org", subject="s",
                      message="m", sent_at=now),
        OutboundEmail(dedupe_key=f"statement:{year}:1", recipient="a@example.org", subject="s",
                      message="m", sent_at=now),
        OutboundEmail(dedupe_key=f"statement:{year}:2", recipient="b@example.org", subject="s",
                      message="m"),
        OutboundEmail(dedupe_key=f"statement:{year}:1:c1", recipient="a@example.org",
                      subject="s", message="m", sent_at=now),
    ])
    subscribers = [NewsSubscriber(email=f"r{n}@example.org", consent_version="v1",
                                  consented_at=now, consent_source="test") for n in range(3)]
    db.session.add_all(subscribers)
    day = now.date()
    db.session.add_all([Digest(digest_date=day - timedelta(days=1), window_start=now,
                               window_end=now, finished_at=now),
                        Digest(digest_date=day, window_start=now, window_end=now)])
    db.session.flush()
    db.session.add_all([
        DigestSend(subscriber_id=subscribers[0].id, digest_date=day, status=SendStatus.SENT,
                   claimed_at=now),
        DigestSend(subscriber_id=subscribers[1].id, digest_date=day, status=SendStatus.FAILED,
                   claimed_at=now),
        DigestSend(subscriber_id=subscribers[2].id, digest_date=day - timedelta(days=1),
                   status=SendStatus.SENT, claimed_at=now),
    ])
    db.session.commit()

    figures = scrape(client)
    assert value(figures, "newsfund_database_up") == 1
    assert value(figures, "newsfund_gifts", status="paid") == 2
    assert value(figures, "newsfund_gifts", status="pending") == 1
    assert value(figures, "newsfund_gifts", status="refunded") == 0
    assert value(figures, "newsfund_webhook_events_received_total",
                 provider="sandbox") == applied + 5
    assert value(figures, "newsfund_webhook_events", provider="sandbox",
                 state="applied") == applied
    assert value(figures, "newsfund_webhook_events", provider="sandbox", state="ignored") == 1
    assert value(figures, "newsfund_webhook_events", provider="sandbox", state="waiting") == 2
    assert value(figures, "newsfund_webhook_events", provider="sandbox", state="parked") == 1
    assert value(figures, "newsfund_webhook_events", provider="sandbox", state="failed") == 1
    age = value(figures, "newsfund_webhook_oldest_waiting_event_age_seconds")
    assert 2 * 3600 <= age < 2 * 3600 + 60
    # Two receipts sent; two messages waiting, one of them failing; the statements' own.
    assert value(figures, "newsfund_mail_sent_total") == 2 + 3
    assert value(figures, "newsfund_mail_queued") == 2 + 1
    assert value(figures, "newsfund_mail_failed") == 1
    assert value(figures, "newsfund_statements_sent", year=str(year), kind="first") == 1
    assert value(figures, "newsfund_statements_queued", year=str(year), kind="first") == 1
    assert value(figures, "newsfund_statements_sent", year=str(year), kind="corrected") == 1
    assert value(figures, "newsfund_statements_queued", year=str(year), kind="corrected") == 0
    assert value(figures, "newsfund_statements_donors", year=str(year)) == 1  # Noa's 2 gifts
    assert not any(name.startswith("newsfund_statements") and ("year", str(year - 1)) in labels
                   for name, labels in figures)
    assert value(figures, "newsfund_digest_sends", state="sent") == 1  # today's only
    assert value(figures, "newsfund_digest_sends", state="failed") == 1
    assert value(figures, "newsfund_digest_sends", state="claimed") == 0
    assert value(figures, "newsfund_digest_finished") == 0
    # Inline jobs: no queue to report.
    assert not any(name.startswith("newsfund_jobs") for name, _ in figures)


def fail_for_the_metrics() -> None:
    raise RuntimeError("this job always fails")


def test_the_job_queue_and_its_failed_jobs(make_app, database_url, redis_url):
    flask_app = make_app(database_url, REDIS_URL=redis_url)
    queue = Queue(flask_app.config["JOBS_QUEUE"], connection=Redis.from_url(redis_url))
    queue.enqueue(fail_for_the_metrics)  # no retry set on it: failed at its first try
    for _ in range(3):
        queue.enqueue(len, "waiting")
    jobs.worker(flask_app).work(burst=True, max_jobs=1)
    figures = scrape(flask_app.test_client())
    assert value(figures, "newsfund_jobs_queue_up") == 1
    assert value(figures, "newsfund_jobs_queued") == 3
    assert value(figures, "newsfund_jobs_failed") == 1
    assert value(figures, "newsfund_jobs_retrying") == 0
    # Redis gone: the page still answers, saying so.
    down = make_app(database_url, REDIS_URL="redis://127.0.0.1:1/0").test_client()
    figures = scrape(down)
    assert value(figures, "newsfund_jobs_queue_up") == 0
    assert value(figures, "newsfund_database_up") == 1
