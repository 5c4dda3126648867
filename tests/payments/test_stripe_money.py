"""Applying Stripe's events to the ledger and the receipts, in every delivery order (issue 16
items 1, 2, 3, 5 and 7): dispute fees as the dispute's balance transactions say, receipts that
follow the money, the paid time from the charge, failed-renewal mail, a plan's start and
cancel reason.

Each scenario is delivered in every order (``itertools.permutations``; an event that comes too
early is answered 409 and delivered again, as Stripe retries), then replayed under new event
ids (as the catch-up sync or a resend would bring them): the end state is the same in every
order, and the replay changes nothing.
"""

from __future__ import annotations

import difflib
import email
import email.policy
import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from app.extensions import db
from app.finance.common import make_period
from app.finance.exports import HEADER, export_filter, iter_rows
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.finance.reconciliation import reconcile
from app.giving.models import Gift, GiftStatus, PlanStatus, RecurringPlan
from app.mail import OutboundEmail
from app.payments.models import Payment, PaymentKind
from tests.support import stripe_objects as so
from tests.support.stripe import deliver, deliver_until_done, reset_ledger, serve_invoice

NEW_YORK = ZoneInfo("America/New_York")


def ts(*args) -> int:
    """A unix time from a wall-clock time in New York (the suite's ORG_TIMEZONE)."""
    return int(datetime(*args, tzinfo=NEW_YORK).timestamp())


def serve_payment(httpserver, *, gift: str, amount: int, charge_created=so.NOW,
                  refunds=()):
    """What the handlers ask Stripe: the payment intent (``metadata.gift`` set, as our
    checkout sets it) with its charge and balance transaction expanded, and the refunds."""
    charge = {**so.charge(amount=amount, created=charge_created),
              "balance_transaction": so.balance_transaction(amount=amount)}
    httpserver.expect_request("/v1/payment_intents/pi_test_1", method="GET").respond_with_json(
        {**so.payment_intent(gift=gift, amount=amount), "latest_charge": charge})
    httpserver.expect_request("/v1/refunds", method="GET").respond_with_json(
        so.stripe_list(list(refunds), "/v1/refunds"))


def mails() -> list[tuple[str, str]]:
    """Every message queued, as (subject, plain text), in the order queued."""
    rows = db.session.execute(select(OutboundEmail.subject, OutboundEmail.message)
                              .order_by(OutboundEmail.id)).all()
    return [(subject, email.message_from_string(message, policy=email.policy.default)
             .get_body(preferencelist=("plain",)).get_content()) for subject, message in rows]


def receipts() -> list[tuple[int, ReceiptStatus]]:
    return [tuple(r) for r in db.session.execute(
        select(Receipt.amount, Receipt.status).order_by(Receipt.id)).all()]


def ledger_rows() -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        select(Payment.kind, Payment.amount, Payment.fee, Payment.provider_id)
        .order_by(Payment.kind, Payment.provider_id)).all()]


def replayed(events: list[dict]) -> list[dict]:
    """The same objects under new event ids: applied again, they must change nothing."""
    return [{**evt, "id": f"{evt['id']}_again"} for evt in events]


def run_every_order(client, gift, events: list[dict], check) -> None:
    """Deliver ``events`` in every order from a pending gift and ``check(order)`` the end
    state; then replay them, which must change nothing at all."""
    for order in itertools.permutations(events):
        reset_ledger(gift)
        # Receipt numbers from 1 again, so that mails can be compared across orders.
        db.session.execute(delete(ReceiptCounter))
        db.session.commit()
        deliver_until_done(client, order)
        names = [e["type"] for e in order]
        check(names)
        state = (ledger_rows(), receipts(), mails())
        deliver_until_done(client, replayed(list(order)))
        assert (ledger_rows(), receipts(), mails()) == state, names


def export_row(gift_id: int, first: str, last: str) -> dict:
    period = make_period(first, last, NEW_YORK)
    [row] = [dict(zip(HEADER, r, strict=True)) for r in iter_rows(export_filter(period))
             if r[0] == gift_id]
    return row


# -- 1 and 2: disputes: their fees, and the receipt ----------------------------------------


def test_a_lost_dispute_records_its_fee_and_voids_the_receipt_in_every_order(
        client, gift, httpserver):
    g = gift.public_id
    serve_payment(httpserver, gift=g, amount=5000)
    events = [
        so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000)),
        so.event("charge.dispute.created", so.dispute(amount=5000, fee=1500)),
        so.event("charge.dispute.closed", so.dispute(amount=5000, fee=1500, status="lost")),
    ]

    def check(names):
        assert ledger_rows() == [(PaymentKind.CHARGE, 5000, 175, "pi_test_1"),
                                 (PaymentKind.DISPUTE, 5000, 1500, "du_test_1")], names
        assert db.session.get(Gift, gift.id).status is GiftStatus.DISPUTED
        # The receipt is void, and the donor was told so, once: the same mail in every order.
        assert receipts() == [(5000, ReceiptStatus.VOID)], names
        [number] = db.session.scalars(select(Receipt.number)).all()
        subjects = [subject for subject, _ in mails()]
        assert subjects == ["Thank you for your gift to A test appeal",
                            f"Your receipt {number} is void"], names
        assert "disputed" in mails()[1][1]

    run_every_order(client, gift, events, check)

    # The export shows the void (no receipt number) and the dispute's fee; net subtracts it.
    paid = db.session.get(Gift, gift.id).paid_at.astimezone(NEW_YORK).date().isoformat()
    row = export_row(gift.id, paid, paid)
    assert row["receipt_number"] == ""
    assert (row["dispute_fee"], row["dispute_fee_minor"]) == ("15.00", 1500)
    assert row["net_minor"] == 5000 - 175 - 5000 - 1500
    [line] = reconcile(make_period(paid, paid, NEW_YORK)).by_currency
    assert (line.dispute_fees, line.net) == (1500, 5000 - 175 - 5000 - 1500)


def test_a_won_dispute_reinstates_the_money_and_the_returned_fee_and_reissues_the_receipt(
        client, gift, httpserver):
    g = gift.public_id
    serve_payment(httpserver, gift=g, amount=5000)
    won = so.dispute(amount=5000, fee=1500, fee_returned=1500, status="won",
                     closed_at=so.NOW + 40 * 86400)
    events = [
        so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000)),
        so.event("charge.dispute.created", so.dispute(amount=5000, fee=1500)),
        so.event("charge.dispute.closed", won),
    ]

    def check(names):
        assert ledger_rows() == [
            (PaymentKind.CHARGE, 5000, 175, "pi_test_1"),
            (PaymentKind.DISPUTE, 5000, 1500, "du_test_1"),
            (PaymentKind.DISPUTE_WON, 5000, -1500, "du_test_1:won")], names
        assert db.session.get(Gift, gift.id).status is GiftStatus.PAID
        # One receipt stands, for the whole gift; any voided while the money was withheld
        # was reissued, and the donor's last receipt mail is the standing one.
        current = db.session.scalars(select(Receipt).where(
            Receipt.status == ReceiptStatus.ISSUED)).all()
        assert [r.amount for r in current] == [5000], names
        receipt_mails = [s for s, _ in mails() if "receipt" in s.lower() or "Thank" in s]
        if len(receipts()) > 1:  # voided on the dispute, then reissued on winning it
            assert receipt_mails[-1] == f"Your corrected receipt {current[0].number}", names
        else:
            assert receipt_mails == ["Thank you for your gift to A test appeal"], names

    run_every_order(client, gift, events, check)

    # Stripe returned its fee: the dispute costs nothing in the end, in the export and the
    # reconciliation of the days from the dispute to its end.
    first = datetime.fromtimestamp(so.NOW, NEW_YORK).date().isoformat()
    last = datetime.fromtimestamp(so.NOW + 40 * 86400, NEW_YORK).date().isoformat()
    row = export_row(gift.id, first, last)
    assert (row["disputed_minor"], row["dispute_fee_minor"]) == (0, 0)
    assert row["net_minor"] == 5000 - 175
    assert row["receipt_number"] != ""
    # The dispute's month alone: the money and the fee withdrawn.
    row = export_row(gift.id, first, first)
    assert (row["disputed_minor"], row["dispute_fee_minor"]) == (5000, 1500)


def test_a_dispute_event_without_balance_transactions_records_the_amount_and_a_later_one_the_fee(
        client, gift, httpserver):
    g = gift.public_id
    serve_payment(httpserver, gift=g, amount=5000)
    deliver(client, so.event("checkout.session.completed",
                             so.checkout_session(gift=g, amount=5000)))
    deliver(client, so.event("charge.dispute.created",
                             so.dispute(amount=5000, transactions=[])))
    assert ledger_rows()[1:] == [(PaymentKind.DISPUTE, 5000, None, "du_test_1")]
    deliver(client, so.event("charge.dispute.funds_withdrawn", so.dispute(amount=5000, fee=1500)))
    assert ledger_rows()[1:] == [(PaymentKind.DISPUTE, 5000, 1500, "du_test_1")]
    # Reinstated before it is closed (under review still): the money back, Stripe's fee kept.
    reinstated = so.dispute(amount=5000, fee=1500, status="won")
    deliver(client, so.event("charge.dispute.funds_reinstated",
                             {**reinstated, "status": "under_review"}))
    assert ledger_rows()[1:] == [(PaymentKind.DISPUTE, 5000, 1500, "du_test_1"),
                                 (PaymentKind.DISPUTE_WON, 5000, 0, "du_test_1:won")]
    assert db.session.get(Gift, gift.id).status is GiftStatus.PAID


# -- 2: one event, several refunds ---------------------------------------------------------


@pytest.mark.parametrize("refunds, left", [((3000, 2000), 0), ((1500, 2000), 1500)])
def test_a_refund_event_carrying_two_refunds_mails_the_final_state_only(
        client, gift, httpserver, refunds, left):
    g = gift.public_id
    listed = [so.refund(refund_id=f"re_test_{i}", amount=amount)
              for i, amount in enumerate(refunds, 1)]
    serve_payment(httpserver, gift=g, amount=5000, refunds=listed)
    events = [
        so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000)),
        so.event("payment_intent.succeeded", so.payment_intent(gift=g, amount=5000)),
        so.event("charge.refunded", so.charge(amount=5000, refunded=sum(refunds))),
    ]

    def check(names):
        numbers = db.session.scalars(select(Receipt.number).order_by(Receipt.id)).all()
        subjects = [subject for subject, _ in mails()]
        if left:  # what is left gets one corrected receipt; no intermediate amount
            assert receipts() == [(5000, ReceiptStatus.VOID), (left, ReceiptStatus.ISSUED)]
            assert subjects == ["Thank you for your gift to A test appeal",
                                f"Your corrected receipt {numbers[1]}"], names
        else:  # refunded in full: the receipt is void, and the donor is told
            assert receipts() == [(5000, ReceiptStatus.VOID)], names
            assert subjects == ["Thank you for your gift to A test appeal",
                                f"Your receipt {numbers[0]} is void"], names
            assert "refunded in full" in mails()[1][1]

    run_every_order(client, gift, events, check)


# -- 3: the paid time is the charge's ------------------------------------------------------


def test_a_gift_paid_just_after_midnight_on_new_years_day_is_receipted_in_the_new_year(
        client, gift, httpserver):
    """The session opened at 23:50 on 31 December and the payment intent at 23:55, New York
    time; the charge went through at 00:10 on 1 January: the gift is the new year's in every
    order."""
    g = gift.public_id
    paid = ts(2026, 1, 1, 0, 10)
    serve_payment(httpserver, gift=g, amount=5000, charge_created=paid)
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, created=ts(2025, 12, 31, 23, 50))),
        so.event("payment_intent.succeeded", so.payment_intent(
            gift=g, amount=5000, created=ts(2025, 12, 31, 23, 55))),
    ]

    def check(names):
        assert db.session.get(Gift, gift.id).paid_at.timestamp() == paid, names
        assert db.session.scalar(select(Payment.occurred_at)).timestamp() == paid
        assert db.session.scalar(select(Receipt.year)) == 2026, names

    run_every_order(client, gift, events, check)


def test_a_monthly_gift_is_paid_when_its_invoice_was_and_starts_when_its_subscription_did(
        client, gift, httpserver):
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    g = gift.public_id
    paid, started = ts(2026, 1, 1, 0, 10), ts(2026, 1, 1, 0, 9)
    serve_invoice(httpserver, invoice_id="in_test_1", intent="pi_test_sub_1", amount=5000,
                  paid_at=paid)
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, mode="subscription", subscription="sub_test_1",
            invoice="in_test_1", created=ts(2025, 12, 31, 23, 50))),
        so.event("invoice.paid", so.invoice(gift=g, amount=5000, paid_at=paid)),
        so.event("customer.subscription.updated", so.subscription(
            gift=g, amount=5000, start_date=started)),
    ]

    def check(names):
        assert db.session.get(Gift, gift.id).paid_at.timestamp() == paid, names
        assert db.session.scalar(select(Receipt.year)) == 2026, names
        plan = db.session.scalar(select(RecurringPlan))
        assert plan.started_at.timestamp() == started, names

    run_every_order(client, gift, events, check)


# -- 5 and 7: a renewal that failed for good, and the plan Stripe ended --------------------


def test_a_renewal_that_failed_and_ended_the_plan_mails_the_same_in_every_order(
        client, gift, httpserver):
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    g = gift.public_id
    serve_invoice(httpserver, invoice_id="in_test_1", intent="pi_test_sub_1", amount=5000)
    started = so.NOW - 60
    # The first payment through its checkout session (its invoice.paid is the same payment:
    # test_stripe's subscription scenario runs it in every order).
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, mode="subscription", subscription="sub_test_1",
            invoice="in_test_1")),
        # Stripe's last attempt: it names no next one.
        so.event("invoice.payment_failed", so.invoice(
            invoice_id="in_test_2", gift=g, amount=5000, billing_reason="subscription_cycle",
            status="open", attempt_count=4, next_payment_attempt=None)),
        so.event("customer.subscription.deleted", so.subscription(
            gift=g, amount=5000, status="canceled", canceled_at=so.NOW + 40 * 86400,
            reason="payment_failed", start_date=started)),
    ]
    seen = []

    def check(names):
        plan = db.session.scalar(select(RecurringPlan))
        assert (plan.status, plan.cancel_reason) == (PlanStatus.CANCELED, "payment failed")
        assert plan.started_at.timestamp() == started
        sent = sorted(mails())
        assert [s for s, _ in sent] == [
            "Thank you for your gift to A test appeal",
            "Your gift to independent journalism could not be renewed",
            "Your monthly gift to A test appeal has ended"], names
        failed, ended = sent[1][1], sent[2][1]
        # The plan could not be saved: no card link, a link to give again.
        assert "/billing/card/" not in failed
        restart = "http://donate.test/campaigns/twenty?frequency=monthly&amount=50.00"
        assert restart in failed and restart in ended
        # The plan's id (in the links to it) is new in each order on PostgreSQL.
        sent = [(s, b.replace(f"/plans/{plan.id}", "/plans/ID")) for s, b in sent]
        seen.append(sent)
        # The very same mail, whatever the order.
        assert sent == seen[0], (names, "\n".join(difflib.unified_diff(
            "\n".join(f"{s}\n{b}" for s, b in seen[0]).splitlines(),
            "\n".join(f"{s}\n{b}" for s, b in sent).splitlines(), lineterm="")))

    run_every_order(client, gift, events, check)


def test_a_plan_cancelled_in_stripes_portal_keeps_the_reason_and_comment(client, gift,
                                                                       httpserver):
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    g = gift.public_id
    serve_invoice(httpserver, invoice_id="in_test_1", intent="pi_test_sub_1", amount=5000)
    canceled = so.subscription(gift=g, amount=5000, status="canceled", canceled_at=so.NOW,
                               reason="cancellation_requested",
                               comment=" Too much for me this year ")
    events = [
        so.event("checkout.session.completed", so.checkout_session(
            gift=g, amount=5000, mode="subscription", subscription="sub_test_1",
            invoice="in_test_1")),
        so.event("customer.subscription.updated", canceled),
        so.event("customer.subscription.deleted", canceled),
    ]

    def check(names):
        plan = db.session.scalar(select(RecurringPlan))
        assert plan.cancel_reason == "cancellation requested: Too much for me this year"
        ended = [s for s, _ in mails() if s.endswith("has ended")]
        assert ended == ["Your monthly gift to A test appeal has ended"], names

    run_every_order(client, gift, events, check)
