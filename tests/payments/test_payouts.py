"""Stripe payouts: payout events store the payout, its balance transactions are listed through the
real SDK (every page) from a local server speaking the pinned API version, and each one is
joined to the ledger row it pays out, whatever order the events come in."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug import Response

from app.db import utcnow
from app.extensions import db
from app.finance.common import make_period
from app.finance.exports import export_filter, iter_rows, totals
from app.finance.reconciliation import reconcile
from app.giving.services import GivingRules, record_gift_payment, start_gift
from app.payments import ledger
from app.payments.base import ProviderError
from app.payments.models import Payout, PayoutTransaction
from app.payments.providers import current_provider
from app.templating import org_zone
from tests.factories import gift_request
from tests.support import stripe_objects as so
from tests.support.stripe import deliver

NY = ZoneInfo("America/New_York")
NOVEMBER = make_period(date(2025, 11, 1), date(2025, 11, 30), NY)
WHEN = datetime(2025, 11, 20, 15, tzinfo=UTC)


def new_gift(stripe_app, amount: int):
    from app.campaigns.models import Campaign

    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "twenty"))
    gift = start_gift(campaign, gift_request(amount=amount),
                      rules=GivingRules.from_config(stripe_app.config), now=utcnow())
    db.session.flush()
    return gift


def stripe_charge(stripe_app, letter: str, amount: int, fee: int | None):
    """A Stripe gift recorded as the webhooks record one: pi_<letter>, ch_<letter>."""
    gift = new_gift(stripe_app, amount)
    charge = record_gift_payment(gift, provider="stripe", provider_id=f"pi_{letter}",
                                 payment_intent_id=f"pi_{letter}", charge_id=f"ch_{letter}",
                                 amount=gift.total, currency="USD", occurred_at=WHEN,
                                 zone=org_zone())
    if fee is not None:
        charge.fee, charge.net = fee, amount - fee
    db.session.flush()
    return charge


def fee_of(amount: int) -> int:
    return amount * 29 // 1000 + 30


def charge_txn(letter: str, amount: int, *, expanded=True, fee=None):
    source = (so.charge(charge_id=f"ch_{letter}", intent=f"pi_{letter}", amount=amount)
              if expanded else f"ch_{letter}")
    return so.payout_txn(txn_id=f"txn_ch_{letter}", type_="charge", amount=amount,
                         fee=fee_of(amount) if fee is None else fee, source=source)


def refund_txn(refund_id: str, amount: int, charge_letter: str):
    return so.payout_txn(txn_id=f"txn_{refund_id}", type_="refund", amount=-amount,
                         source=so.refund(refund_id=refund_id, amount=amount,
                                          charge_id=f"ch_{charge_letter}"))


def dispute_txn(dispute_id: str, amount: int, *, won=False, fee=0):
    return so.payout_txn(
        txn_id=f"txn_{dispute_id}_{'won' if won else 'lost'}", type_="adjustment",
        amount=amount if won else -amount, fee=fee,
        reporting_category="dispute_reversal" if won else "dispute",
        source=so.dispute(dispute_id=dispute_id, amount=amount), description="Chargeback")


def serve_transactions(httpserver, txns: list[dict], *, payout_id="po_test_1", per_page=100):
    """``GET /v1/balance_transactions?payout=...``: ``per_page`` a page, ``starting_after``
    followed as Stripe does; the payout's own debit listed last, as Stripe lists it."""
    amount = sum(t["net"] for t in txns)
    listed = [*txns, so.payout_txn(txn_id=f"txn_{payout_id}", type_="payout",
                                   amount=-amount, source=so.payout(payout_id=payout_id,
                                                                    amount=amount))]
    seen = []

    def handler(request):
        seen.append(dict(request.args))
        assert request.args["payout"] == payout_id
        assert request.args["limit"] == "100"
        assert request.args["expand[0]"] == "data.source"
        assert request.headers["Stripe-Version"] == so.API_VERSION
        start = 0
        if "starting_after" in request.args:
            start = 1 + [t["id"] for t in listed].index(request.args["starting_after"])
        page = listed[start:start + per_page]
        body = so.stripe_page(page, "/v1/balance_transactions",
                              has_more=start + per_page < len(listed))
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/balance_transactions", method="GET").respond_with_handler(
        handler)
    return amount, seen


@pytest.fixture
def month(stripe_app):
    """Charges A to D, a refund of B, C disputed, D disputed and won; fees known."""
    rows = {letter: stripe_charge(stripe_app, letter, amount, fee_of(amount))
            for letter, amount in (("a", 5000), ("b", 10000), ("c", 3000), ("d", 1800))}
    ledger.record_refund(rows["b"], refund_id="re_b", amount=4000, occurred_at=WHEN)
    ledger.record_dispute(rows["c"], dispute_id="du_c", amount=3000, occurred_at=WHEN)
    ledger.record_dispute_won(rows["d"], dispute_id="du_d", amount=1800, occurred_at=WHEN)
    db.session.commit()
    return rows


def month_txns():
    return [
        charge_txn("a", 5000), charge_txn("b", 10000), charge_txn("c", 3000),
        charge_txn("d", 1800), refund_txn("re_b", 4000, "b"), dispute_txn("du_c", 3000),
        dispute_txn("du_d", 1800), dispute_txn("du_d", 1800, won=True),
        # Not in our ledger: a Stripe fee, and a charge made outside this app.
        so.payout_txn(txn_id="txn_fee_1", type_="stripe_fee", amount=-200, source=None,
                      description="Radar for Fraud Teams"),
        charge_txn("x", 2500),
    ]


def payout_line(result, payout_id="po_test_1"):
    [line] = [p for p in result.payouts if p.label == payout_id]
    return line


def test_payout_paid_links_charges_refunds_and_disputes_across_two_pages(
        client, httpserver, month):
    amount, seen = serve_transactions(httpserver, month_txns(), per_page=6)
    evt = so.event("payout.paid", so.payout(amount=amount))
    assert deliver(client, evt).status_code == 200
    # Eleven listed (with the payout's own debit), six a page: the sixth ends the first.
    assert len(seen) == 2 and seen[1]["starting_after"] == "txn_du_c_lost"

    payout = db.session.scalar(select(Payout))
    assert (payout.provider_id, payout.amount, payout.currency, payout.status) == (
        "po_test_1", amount, "USD", "paid")
    assert payout.arrival_date == date(2025, 11, 26)
    # Ten transactions (the payout's own debit left out), their fees as Stripe charged them.
    assert payout.transaction_count == 10
    assert payout.fee_total == sum(fee_of(a) for a in (5000, 10000, 3000, 1800, 2500))

    line = payout_line(reconcile(NOVEMBER))
    assert (line.charges, line.gross, line.fees) == (4, 19800, 175 + 320 + 117 + 82)
    assert (line.refunds, line.refund_count) == (4000, 1)
    assert (line.disputes, line.dispute_count) == (3000, 2)  # du_d withdrawn, then won
    assert line.net == 19800 - 694 - 4000 - 3000 == 12106
    assert (line.unmatched_count, line.unmatched_net) == (2, -200 + 2500 - fee_of(2500))
    assert line.amount == amount == 12106 - 200 + 2500 - 102
    assert line.difference == 0
    assert line.span == (date(2025, 11, 20), date(2025, 11, 20))


def test_reconciliation_per_payout_equals_the_export_of_its_rows(client, httpserver, month):
    amount, _ = serve_transactions(httpserver, month_txns())
    deliver(client, so.event("payout.paid", so.payout(amount=amount)))
    # An earlier charge, in no payout: never in the payout's export.
    stripe_charge(client.application, "z", 7000, 233)
    line = payout_line(reconcile(NOVEMBER))
    flt = export_filter(make_period(*line.span, NY), **line.filters)
    rows = list(iter_rows(flt))
    assert len(rows) == 4  # gifts a to d, one row each
    sums = totals(rows)["USD"]
    assert (sums["gross_minor"], sums["provider_fee_minor"], sums["refunded_minor"],
            sums["disputed_minor"], sums["net_minor"]) == (
        line.gross, line.fees, line.refunds, line.disputes, line.net)
    everything = totals(iter_rows(export_filter(make_period(*line.span, NY))))["USD"]
    assert everything["gross_minor"] == line.gross + 7000


def test_replayed_and_repeated_payout_events_fetch_and_store_once(client, httpserver, month):
    amount, seen = serve_transactions(httpserver, month_txns())
    paid = so.event("payout.paid", so.payout(amount=amount))
    assert deliver(client, paid).status_code == 200
    assert deliver(client, paid).get_json()["duplicate"] is True
    done = so.event("payout.reconciliation_completed", so.payout(amount=amount))
    assert deliver(client, done).status_code == 200
    assert len(seen) == 1
    assert len(db.session.scalars(select(PayoutTransaction)).all()) == 10
    assert payout_line(reconcile(NOVEMBER)).difference == 0


def test_transactions_wait_for_reconciliation_completed(client, httpserver, month):
    """Stripe lists an automatic payout's transactions once it has reconciled it, which may
    be days after ``payout.paid``: until then the payout shows without them."""
    amount, seen = serve_transactions(httpserver, month_txns())
    assert deliver(client, so.event("payout.paid", so.payout(
        amount=amount, reconciliation_status="in_progress"))).status_code == 200
    assert seen == []
    line = payout_line(reconcile(NOVEMBER))
    assert (line.status, line.listed, line.amount) == ("paid", False, amount)

    assert deliver(client, so.event("payout.reconciliation_completed",
                                    so.payout(amount=amount))).status_code == 200
    assert len(seen) == 1
    assert payout_line(reconcile(NOVEMBER)).difference == 0


def test_status_only_moves_forward_whatever_the_order(client, httpserver):
    failed = so.payout(amount=5000, status="failed", reconciliation_status="in_progress",
                       failure_message="The bank account has been closed.")
    paid = so.payout(amount=5000, status="paid", reconciliation_status="in_progress")
    assert deliver(client, so.event("payout.failed", failed)).status_code == 200
    assert deliver(client, so.event("payout.paid", paid)).status_code == 200
    payout = db.session.scalar(select(Payout))
    assert (payout.status, payout.failure_message) == ("failed",
                                                       "The bank account has been closed.")
    assert reconcile(NOVEMBER).payouts[0].status == "failed"


def test_payout_before_the_charge_links_once_the_charge_is_recorded(
        stripe_app, client, httpserver, month):
    """payout.paid may be processed before the charge it pays out: its transaction is joined
    to the ledger when read, so the charge's own event, coming later, completes the payout."""
    late = new_gift(stripe_app, 6000)
    db.session.commit()
    txns = [*month_txns(), charge_txn("late", 6000)]
    amount, _ = serve_transactions(httpserver, txns)
    assert deliver(client, so.event("payout.paid", so.payout(amount=amount))).status_code == 200
    before = payout_line(reconcile(NOVEMBER))
    assert before.unmatched_count == 3
    assert before.difference == 0  # not in the ledger yet, so counted among the unmatched

    # The charge's event arrives, and its fee is asked for as for any one-time gift.
    intent = so.payment_intent(intent_id="pi_late", gift=late.public_id, amount=6000,
                               charge="ch_late")
    httpserver.expect_request("/v1/payment_intents/pi_late", method="GET").respond_with_json(
        {**intent, "latest_charge": {
            **so.charge(charge_id="ch_late", intent="pi_late", amount=6000),
            "balance_transaction": so.balance_transaction(amount=6000)}})
    assert deliver(client, so.event("payment_intent.succeeded", intent)).status_code == 200
    after = payout_line(reconcile(NOVEMBER))
    assert after.unmatched_count == 2
    assert (after.charges, after.gross) == (5, before.gross + 6000)
    assert after.fees == before.fees + fee_of(6000)
    assert after.difference == 0


def test_unknown_fees_and_dispute_fees_show_as_a_difference(client, httpserver, month):
    month["a"].fee = month["a"].net = None  # Stripe has not told us its fee yet
    db.session.commit()
    txns = [t for t in month_txns() if t["id"] != "txn_du_c_lost"]
    txns.append(dispute_txn("du_c", 3000, fee=1500))  # Stripe's dispute fee
    amount, _ = serve_transactions(httpserver, txns)
    deliver(client, so.event("payout.paid", so.payout(amount=amount)))
    line = payout_line(reconcile(NOVEMBER))
    assert line.fees_unknown == 1
    assert line.difference == -fee_of(5000) - 1500


def test_a_charge_known_by_its_payment_intent_alone_is_linked(stripe_app, client, httpserver):
    """The ledger may know a charge by its payment intent only (its charge id not settled):
    the expanded source names the intent."""
    gift = new_gift(stripe_app, 5000)
    record_gift_payment(gift, provider="stripe", provider_id="pi_q", payment_intent_id="pi_q",
                        amount=gift.total, currency="USD", occurred_at=WHEN,
                        zone=org_zone())
    db.session.commit()
    amount, _ = serve_transactions(httpserver, [charge_txn("q", 5000)])
    deliver(client, so.event("payout.paid", so.payout(amount=amount)))
    line = payout_line(reconcile(NOVEMBER))
    assert (line.gross, line.unmatched_count) == (5000, 0)


def test_stripe_unreachable_while_listing_means_deliver_again(client, httpserver, month):
    httpserver.expect_request("/v1/balance_transactions", method="GET").respond_with_json(
        {"error": {"type": "api_error", "message": "try later"}}, status=500)
    response = deliver(client, so.event("payout.paid", so.payout(amount=100)))
    assert response.status_code == 409
    assert db.session.scalar(select(Payout)) is None


def test_the_sandbox_makes_no_payouts(app):
    with pytest.raises(ProviderError, match="makes no payouts"):
        current_provider().payout_transactions("po_test_1")
