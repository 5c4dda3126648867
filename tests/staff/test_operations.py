"""The operations inbox (/staff/operations): what it lists, the action beside each problem
(audited), the counts on the staff home, and refunds of online gifts, which the ledger records
from the provider's refund event, not from the click."""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select

from app import jobs
from app.audit import Actor, AuditEntry
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Frequency, GiftStatus, PlanStatus
from app.giving.services import GiftError, GivingRules, ensure_plan, request_refund, start_gift
from app.mail import OutboundEmail, transport_from_config
from app.payments.events import event_settings
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.payments.providers import current_provider
from app.payments.sandbox import SandboxSession, card_of
from app.staff import operations
from tests.factories import gift_request, make_campaign, paid_gift
from tests.support.staff import csrf_token

STAFF = Actor(id=None, label="finance@levantwire.example")


def retry(event_pk: int) -> str:
    """The inbox's "try again" on a stored event, with the app's parking bound."""
    return operations.retry_event(event_pk, actor=STAFF,
                                  settings=event_settings(current_app.config))


def box(app, **kwargs):
    return operations.inbox(now=utcnow(), backend=jobs.backend(),
                            settings=operations.Settings.from_config(app.config), **kwargs)


def audit_actions() -> list[str]:
    """What the inbox's actions wrote to the audit log (granting a test's roles aside)."""
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action.startswith("operations.")).order_by(AuditEntry.id)))


def stored_event(event: dict, **values) -> ProviderEvent:
    """An event stored as the webhook stores it, not applied (its job was lost, or it failed)."""
    row = ProviderEvent(provider="sandbox", event_id=event["id"], type=event["type"],
                        payload=json.dumps(event), received_at=utcnow() - timedelta(hours=3),
                        **values)
    db.session.add(row)
    db.session.commit()
    return row


def unpaid_gift_event(app, campaign):
    """A started gift and the sandbox's completed-checkout event that pays it."""
    gift = start_gift(campaign, gift_request(amount=2500), now=utcnow(),
                      rules=GivingRules.from_config(app.config))
    db.session.commit()
    session = SandboxSession(id=f"cs_sbx_{gift.public_id}", reference=gift.public_id,
                             amount=gift.total, currency="USD", frequency=Frequency.ONE_TIME,
                             description="gift", email="noa@example.org",
                             success_url="http://donate.test/", cancel_url="http://donate.test/",
                             metadata={"gift": gift.public_id})
    [event] = current_provider().completion_events(session, name="Noa Levi",
                                                   now=utcnow().timestamp(),
                                                   card=card_of("4242424242424242"))
    return gift, event


# -- what the inbox lists ---------------------------------------------------------------------

def test_an_empty_inbox_counts_nothing_and_says_jobs_run_inline(app):
    inbox = box(app)
    assert inbox.total == 0
    assert inbox.failed_jobs is None  # no REDIS_URL: no queue to fail in


def test_events_are_sorted_into_failed_waiting_parked_and_not_ours(app):
    campaign = make_campaign()
    _, failed = unpaid_gift_event(app, campaign)
    failed_row = stored_event(failed, attempts=2, last_error="OperationalError: database gone")
    waiting_row = stored_event(
        {"id": "evt_wait", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}},
        attempts=1, note="subscription sub_1 is not known yet")
    parked_row = stored_event(
        {"id": "evt_park", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}},
        attempts=4, note="no recorded charge for ch_1", parked_at=utcnow())
    stored_event({"id": "evt_other", "type": "charge.refunded",
                  "data": {"object": {"id": "ch_shop"}}},
                 processed_at=utcnow(), not_ours=True, note="not ours: charge ch_shop")
    stored_event({"id": "evt_done", "type": "payout.paid", "data": {"object": {"id": "po_1"}}},
                 processed_at=utcnow())

    inbox = box(app)
    assert [e.id for e in inbox.failed.items] == [failed_row.id]
    assert [e.id for e in inbox.waiting.items] == [waiting_row.id]
    assert [e.id for e in inbox.parked.items] == [parked_row.id]
    assert (inbox.not_ours.count, [e.event_id for e in inbox.not_ours.items]) == (1, ["evt_other"])
    assert inbox.total == 3  # events not ours need nobody
    assert operations.event_type_and_object(waiting_row) == ("invoice.paid", "in_1")


def test_retrying_a_failed_event_applies_it_and_is_audited(app, outbox):
    gift, event = unpaid_gift_event(app, make_campaign())
    row = stored_event(event, attempts=1, last_error="OperationalError: database gone")

    assert retry(row.id) == "applied"
    jobs.commit()
    db.session.expire_all()
    assert db.session.get(ProviderEvent, row.id).processed_at is not None
    assert db.session.get(ProviderEvent, row.id).last_error is None
    assert db.session.get(type(gift), gift.id).status is GiftStatus.PAID
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "operations.event_retry"))
    assert (entry.actor_label, entry.target_id) == (STAFF.label, str(row.id))
    assert json.loads(entry.after)["outcome"] == "applied"
    assert box(app).total == 0
    with pytest.raises(operations.OperationsError, match="applied already"):
        retry(row.id)


def test_a_retry_that_still_waits_counts_the_attempt_and_keeps_the_reason(app):
    row = stored_event({"id": "evt_early", "type": "customer.subscription.deleted",
                        "created": int(utcnow().timestamp()),
                        "data": {"object": {"id": "sub_unknown", "status": "canceled",
                                            "metadata": {"gift": "no-such-gift"}}}})
    outcome = retry(row.id)
    db.session.expire_all()
    stored = db.session.get(ProviderEvent, row.id)
    if stored.processed_at is None:  # waits: the attempt and its reason are kept
        assert outcome.startswith("still waits") and stored.attempts == 1
        assert stored.note and stored.last_error is None
    else:  # or, known to be no sale of ours, it is acknowledged with a note
        assert outcome == "applied" and stored.note
    assert audit_actions() == ["operations.event_retry"]


def test_undelivered_mail_is_listed_and_resent(app, outbox):
    db.session.add_all([
        OutboundEmail(dedupe_key="receipt:1", recipient="noa@example.org", subject="Receipt",
                      message="Subject: Receipt\r\n\r\nThanks", attempts=1,
                      last_error="SMTPServerDisconnected: gone"),
        OutboundEmail(dedupe_key="receipt:2", recipient="sam@example.org", subject="Fresh",
                      message="Subject: Fresh\r\n\r\nThanks"),  # queued just now: in flight
        OutboundEmail(dedupe_key="receipt:3", recipient="ali@example.org", subject="Sent",
                      message="x", attempts=1, sent_at=utcnow()),
    ])
    db.session.commit()
    inbox = box(app)
    [stuck] = inbox.undelivered.items
    assert stuck.subject == "Receipt"

    assert operations.resend_mail(stuck.id, actor=STAFF,
                                  transport=transport_from_config(app.config)) is None
    assert [m["Subject"] for m in outbox()] == ["Receipt"]
    assert db.session.get(OutboundEmail, stuck.id).sent_at is not None
    assert box(app).undelivered.count == 0
    assert audit_actions() == ["operations.mail_resend"]


def test_mail_another_sender_has_in_hand_is_not_resent_beside_it(app, outbox):
    """A job or ``flask mail send-pending`` handing the message to the mail server right now
    has it claimed: staff are told so, and nothing is sent twice or audited as delivered."""
    stuck = OutboundEmail(dedupe_key="receipt:1", recipient="noa@example.org",
                          subject="Receipt", message="Subject: Receipt\r\n\r\nThanks",
                          attempts=1, last_error="SMTPServerDisconnected: gone",
                          claimed_at=utcnow(),
                          claimed_by=f"{socket.gethostname()}:{os.getppid()}")  # running
    db.session.add(stuck)
    db.session.commit()
    with pytest.raises(operations.OperationsError, match="being delivered right now"):
        operations.resend_mail(stuck.id, actor=STAFF,
                               transport=transport_from_config(app.config))
    assert outbox() == [] and audit_actions() == []


def test_mail_queued_long_ago_and_never_tried_is_undelivered(app):
    db.session.add(OutboundEmail(dedupe_key="lost", recipient="noa@example.org", subject="Lost",
                                 message="x", created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert [m.subject for m in box(app).undelivered.items] == ["Lost"]


def _plan(app, campaign, email, *, next_charge_in: timedelta, status=PlanStatus.ACTIVE):
    gift, _ = paid_gift(campaign, email=email, frequency=Frequency.MONTHLY)
    plan = ensure_plan(gift, provider="sandbox", subscription_id=f"sub_{gift.public_id}",
                       customer_id=None, started_at=utcnow() - timedelta(days=40))
    plan.next_charge_at = utcnow() + next_charge_in
    plan.status = status
    db.session.commit()
    return plan


def test_plans_past_due_and_renewals_expected_but_not_seen(app):
    campaign = make_campaign()
    app.config["RENEWAL_GRACE_HOURS"] = 48
    overdue = _plan(app, campaign, "late@example.org", next_charge_in=-timedelta(hours=49))
    _plan(app, campaign, "grace@example.org", next_charge_in=-timedelta(hours=47))
    _plan(app, campaign, "ahead@example.org", next_charge_in=timedelta(days=20))
    past_due = _plan(app, campaign, "card@example.org", next_charge_in=-timedelta(days=5),
                     status=PlanStatus.PAST_DUE)
    _plan(app, campaign, "gone@example.org", next_charge_in=-timedelta(days=90),
          status=PlanStatus.CANCELED)

    inbox = box(app)
    assert [p.id for p in inbox.missing_renewals.items] == [overdue.id]
    assert [p.id for p in inbox.past_due.items] == [past_due.id]


def test_fees_still_unknown_are_listed_for_providers_that_report_them(app):
    campaign = make_campaign()
    app.config["FEE_UNKNOWN_AFTER_HOURS"] = 24
    _, old = paid_gift(campaign, when=utcnow() - timedelta(days=2), email="a@example.org")
    _, recent = paid_gift(campaign, when=utcnow() - timedelta(hours=2),
                          email="b@example.org")
    _, settled = paid_gift(campaign, when=utcnow() - timedelta(days=2), fee=175,
                           email="c@example.org")
    _, sandbox = paid_gift(campaign, when=utcnow() - timedelta(days=2),
                           email="d@example.org")
    for charge in (old, recent, settled):
        charge.provider = "stripe"
    db.session.commit()
    assert [c.id for c in box(app).unknown_fees.items] == [old.id]
    assert sandbox.id not in [c.id for c in box(app).unknown_fees.items]


# -- the pages ----------------------------------------------------------------------------------

def test_the_inbox_page_shows_each_problem_with_its_action(app, client, as_role):
    campaign = make_campaign()
    _, event = unpaid_gift_event(app, campaign)
    row = stored_event(event, attempts=3, last_error="OperationalError: database gone")
    _plan(app, campaign, "late@example.org", next_charge_in=-timedelta(days=3))
    as_role("finance")
    page = client.get("/staff/operations/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    item = re.search(rf'<li class="ops-item" data-event="{event["id"]}">.*?</li>', html, re.S)
    assert "OperationalError: database gone" in item.group(0)
    assert "3 attempts" in item.group(0) and "3 hours" in item.group(0)
    assert f'action="/staff/operations/events/{row.id}/retry"' in item.group(0)
    assert 'data-plan=' in html and "late@example.org" in html
    assert "jobs run inline" in html

    answer = client.post(f"/staff/operations/events/{row.id}/retry",
                         data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 303
    assert db.session.get(ProviderEvent, row.id).processed_at is not None
    assert "Event retried: applied." in client.get("/staff/operations/").get_data(as_text=True)


def test_an_action_without_its_token_is_refused(app, client, as_role):
    _, event = unpaid_gift_event(app, make_campaign())
    row = stored_event(event, attempts=1, last_error="boom")
    as_role("finance")
    assert client.post(f"/staff/operations/events/{row.id}/retry").status_code == 400
    assert db.session.get(ProviderEvent, row.id).processed_at is None
    assert audit_actions() == []


@pytest.mark.parametrize("role, shown", [("finance", True), ("admin", True),
                                         ("fundraiser", False)])
def test_the_staff_home_counts_what_waits_for_finance(app, client, as_role, role, shown):
    db.session.add(OutboundEmail(dedupe_key="k", recipient="noa@example.org", subject="S",
                                 message="x", attempts=2, last_error="refused"))
    db.session.commit()
    as_role(role)
    html = client.get("/staff/").get_data(as_text=True)
    assert ('data-operations="1"' in html) is shown
    assert ('data-count="mail not delivered"><strong>1</strong>' in html) is shown


# -- refunds of online gifts ----------------------------------------------------------------------

def ledger_refunds(gift_id: int) -> list[int]:
    return list(db.session.scalars(select(Payment.amount).where(
        Payment.gift_id == gift_id, Payment.kind == PaymentKind.REFUND)))


def test_a_refund_is_recorded_from_the_providers_event_not_the_request(app, outbox):
    gift, _ = paid_gift(make_campaign(), amount=5000)
    db.session.commit()
    result = request_refund(gift, current_provider(), amount=1500, reason="Asked by donor",
                            key="k" * 20, actor=STAFF)
    # Asked of the provider: nothing recorded until its event comes.
    assert ledger_refunds(gift.id) == [] and gift.status is GiftStatus.PAID
    jobs.commit()  # the sandbox sends charge.refunded after the commit, as Stripe would
    db.session.expire_all()
    assert ledger_refunds(gift.id) == [1500]
    assert db.session.get(type(gift), gift.id).status is GiftStatus.PARTIALLY_REFUNDED
    event = db.session.scalar(select(ProviderEvent).where(ProviderEvent.type == "charge.refunded"))
    assert event.processed_at is not None and result.id in event.payload
    receipts = db.session.execute(select(Receipt.amount, Receipt.status).where(
        Receipt.gift_id == gift.id).order_by(Receipt.id)).all()
    assert receipts == [(5000, ReceiptStatus.VOID), (3500, ReceiptStatus.ISSUED)]
    assert any(m["Subject"].startswith("Your corrected receipt") for m in outbox())
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "gift.refund"))
    assert json.loads(entry.after)["reason"] == "Asked by donor"
    assert json.loads(entry.after)["requested"] == 1500


def test_the_same_refund_form_sent_twice_refunds_once(app):
    gift, _ = paid_gift(make_campaign(), amount=5000)
    db.session.commit()
    first = request_refund(gift, current_provider(), amount=1000, reason="Duplicate gift",
                           key="same-form-key-0001", actor=STAFF)
    jobs.commit()
    again = request_refund(gift, current_provider(), amount=1000, reason="Duplicate gift",
                           key="same-form-key-0001", actor=STAFF)
    jobs.commit()
    assert first.id == again.id
    assert ledger_refunds(gift.id) == [1000]
    other = request_refund(gift, current_provider(), amount=1000, reason="Another",
                           key="another-form-key-02", actor=STAFF)
    jobs.commit()
    assert other.id != first.id and sorted(ledger_refunds(gift.id)) == [1000, 1000]


@pytest.mark.parametrize("fields, field, message", [
    ({"amount": 6000, "reason": "x"}, "amount", "Refund between"),
    ({"amount": None, "reason": "  "}, "reason", "Say why"),
])
def test_a_refund_must_fit_what_is_left_and_give_a_reason(app, fields, field, message):
    gift, _ = paid_gift(make_campaign(), amount=5000)
    with pytest.raises(GiftError, match=message) as caught:
        request_refund(gift, current_provider(), key="k" * 20, actor=STAFF, **fields)
    assert caught.value.field == field


def test_an_offline_gift_is_not_refunded_through_the_provider(app):
    gift, charge = paid_gift(make_campaign(), amount=5000)
    charge.provider = "cheque"
    with pytest.raises(GiftError, match="offline gift"):
        request_refund(gift, current_provider(), amount=None, reason="Bounced", key="k" * 20,
                       actor=STAFF)


def test_the_refund_page_finds_the_gift_and_refunds_through_the_form(app, client, as_role):
    gift, _ = paid_gift(make_campaign(), amount=5000)
    db.session.commit()
    as_role("finance")
    page = client.get(f"/staff/operations/refunds?gift={gift.public_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "$50.00" in html
    key = re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)

    # The reason is missing: said beside its field, nothing asked of the provider.
    answer = client.post(f"/staff/operations/refunds/{gift.id}", data={
        "csrf_token": csrf_token(client), "key": key, "amount": "20", "reason": ""})
    assert answer.status_code == 422
    assert re.search(r'id="reason-error">Say why the gift is refunded', answer.get_data(True))
    answer = client.post(f"/staff/operations/refunds/{gift.id}", data={
        "csrf_token": csrf_token(client), "key": key, "amount": "80", "reason": "Asked"})
    assert answer.status_code == 422 and 'id="amount-error">Refund between' in \
        answer.get_data(as_text=True)
    assert ledger_refunds(gift.id) == []

    for _ in range(2):  # a double click: one refund
        answer = client.post(f"/staff/operations/refunds/{gift.id}", data={
            "csrf_token": csrf_token(client), "key": key, "amount": "20",
            "reason": "Donor asked"})
        assert answer.status_code == 303
    assert ledger_refunds(gift.id) == [2000]
    html = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Partially refunded" in html and "$30.00" in html and "Donor asked" in html
    assert "requested $20.00" in html
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "gift.refund")) == 2  # each request is audited


def test_the_refund_page_says_why_an_offline_gift_is_not_refunded_there(app, client,
                                                                         as_role):
    gift, charge = paid_gift(make_campaign(), amount=5000)
    charge.provider = "cheque"
    db.session.commit()
    as_role("finance")
    html = client.get(f"/staff/operations/refunds?gift={gift.id}").get_data(as_text=True)
    assert "data-not-refundable" in html and "offline gift" in html
    assert "data-refund-form" not in html
    assert f'href="/staff/finance/offline/{gift.id}"' in html


def test_an_unknown_gift_is_said_beside_the_lookup(app, client, as_role):
    as_role("finance")
    answer = client.get("/staff/operations/refunds?gift=nothing-like-it")
    assert answer.status_code == 422
    assert 'id="gift-error">No gift has this number' in answer.get_data(as_text=True)



# -- failed jobs (RQ on Redis) ------------------------------------------------------------------

def explode(label: str) -> None:
    """A job that fails (module level, so RQ can find it)."""
    raise RuntimeError(f"mail server said no to {label}")


@pytest.fixture
def queue_app(make_app, database_url, app, redis_url):
    queue_app = make_app(database_url, REDIS_URL=redis_url, JOBS_RETRY_INTERVALS=[])
    with queue_app.app_context():
        yield queue_app


def test_failed_jobs_are_listed_and_put_back_on_the_queue(queue_app):
    import signal

    from rq.registry import FailedJobRegistry

    backend = queue_app.extensions["jobs"]
    backend.queue.enqueue(explode, "receipt 7")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        jobs.worker(queue_app).work(burst=True)  # fails it, no retries left
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    inbox = box(queue_app)
    [job] = inbox.failed_jobs.items
    assert job.name == f"{__name__}.explode"
    assert job.error == "RuntimeError: mail server said no to receipt 7"
    assert inbox.failed_jobs.count == 1 and inbox.total == 1 and inbox.jobs_problem is None

    assert operations.retry_job(backend, job.id, actor=STAFF) == f"{__name__}.explode"
    assert backend.queue.count == 1 and FailedJobRegistry(queue=backend.queue).count == 0
    assert audit_actions() == ["operations.job_retry"]
    with pytest.raises(operations.OperationsError, match="no longer among the failed"):
        operations.retry_job(backend, job.id, actor=STAFF)


def test_redis_unreachable_is_said_not_raised(make_app, database_url, app):
    from tests.support.pgcluster import free_port

    down = make_app(database_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with down.app_context():
        inbox = box(down)
    assert inbox.failed_jobs.count == 0 and inbox.jobs_problem.startswith("Redis did not answer")


# -- the catch-up sync ---------------------------------------------------------------------------

def test_the_catch_up_sync_runs_from_the_inbox_and_is_audited(app, client, as_role):
    as_role("finance")
    answer = client.post("/staff/operations/sync", data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 303
    page = client.get("/staff/operations/").get_data(as_text=True)
    # The sandbox's events are delivered as they are made: it lists none to catch up on.
    assert "Catch-up sync: 0 events listed, 0 applied now" in page
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "operations.sync"))
    assert json.loads(entry.after) == {"listed": 0, "applied": 0, "known": 0, "waiting": 0,
                                       "failed": 0}


def test_retrying_a_parked_event_that_still_waits_says_so(app):
    app.config["WEBHOOK_PARK_AFTER_HOURS"] = 1
    long_ago = int((utcnow() - timedelta(days=5)).timestamp())
    row = stored_event({"id": "evt_parked", "type": "customer.subscription.deleted",
                        "created": long_ago,
                        "data": {"object": {"id": "sub_early", "status": "canceled",
                                            "metadata": {"gift": "gift-of-ours"}}}},
                       parked_at=utcnow() - timedelta(days=2), note="waits for its checkout")
    gift = start_gift(make_campaign(), gift_request(), now=utcnow(),
                      rules=GivingRules.from_config(app.config))
    gift.public_id = "gift-of-ours"  # the subscription names it; its checkout is not in yet
    db.session.commit()
    outcome = retry(row.id)
    assert outcome.startswith("still waits (parked): ")
    db.session.expire_all()
    stored = db.session.get(ProviderEvent, row.id)
    assert stored.processed_at is None and stored.attempts == 1
