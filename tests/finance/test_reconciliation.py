"""Reconciliation: figures from the ledger, equal to the sums of the export of the same period."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.extensions import db
from app.finance.common import make_period
from app.finance.exports import export_filter, iter_rows, totals
from app.finance.reconciliation import PAYOUTS_NOTE, reconcile
from app.payments.models import Payment, PaymentKind
from tests.factories import make_campaign, paid_gift
from tests.finance.support import MARCH, NY, at


def ledger_sum(kind: PaymentKind, period, column=Payment.amount, **where) -> int:
    query = select(func.coalesce(func.sum(column), 0)).where(
        Payment.kind == kind, Payment.occurred_at >= period.start,
        Payment.occurred_at < period.end)
    for name, value in where.items():
        query = query.where(getattr(Payment, name) == value)
    return db.session.scalar(query)


def test_totals_equal_the_ledger(app, ledger_rows):
    result = reconcile(MARCH)
    [usd] = result.by_currency
    assert usd.currency == "USD"
    assert usd.gross == ledger_sum(PaymentKind.CHARGE, MARCH) == 23300
    assert usd.fees == ledger_sum(PaymentKind.CHARGE, MARCH, Payment.fee) == 753
    assert usd.refunds == ledger_sum(PaymentKind.REFUND, MARCH) == 11000
    assert usd.disputes == (ledger_sum(PaymentKind.DISPUTE, MARCH)
                            - ledger_sum(PaymentKind.DISPUTE_WON, MARCH)) == 3000
    assert usd.net == 23300 - 753 - 11000 - 3000
    assert usd.charges == 6 and usd.refund_count == 2 and usd.dispute_count == 2
    assert usd.fees_unknown == result.fees_unknown == 1
    assert result.payouts == [] and result.payouts_note == PAYOUTS_NOTE

    campaigns = {line.label: line for line in result.by_campaign}
    assert set(campaigns) == {"appeal", "ramadan"}
    assert campaigns["ramadan"].gross == 13000 and campaigns["ramadan"].refunds == 4000
    assert campaigns["ramadan"].filters == {"campaign": "ramadan", "currency": "USD"}
    assert sum(line.net for line in result.by_campaign) == usd.net
    [sandbox] = result.by_method
    assert sandbox.label == "sandbox" and sandbox.net == usd.net


def test_every_figure_equals_the_sum_of_its_export(app, ledger_rows):
    result = reconcile(MARCH)
    for line in result.by_currency + result.by_campaign + result.by_method:
        rows = list(iter_rows(export_filter(MARCH, **line.filters)))
        sums = totals(rows)[line.currency]
        assert (sums["gross_minor"], sums["provider_fee_minor"], sums["refunded_minor"],
                sums["disputed_minor"], sums["dispute_fee_minor"], sums["net_minor"]) == (
            line.gross, line.fees, line.refunds, line.disputes, line.dispute_fees,
            line.net), line.label


def test_currencies_are_never_added_together(app):
    usd = make_campaign("dollars")
    ils = make_campaign("shekels", currency="ILS")
    paid_gift(usd, amount=5000, when=at(2026, 3, 2, 15), fee=175)
    paid_gift(ils, amount=18000, when=at(2026, 3, 2, 15), fee=550)
    result = reconcile(MARCH)
    assert [(line.currency, line.gross, line.net) for line in result.by_currency] == [
        ("ILS", 18000, 17450), ("USD", 5000, 4825)]
    export = totals(iter_rows(export_filter(MARCH)))
    assert export["ILS"]["net_minor"] == 17450 and export["USD"]["net_minor"] == 4825


def test_period_follows_the_organisations_zone(app):
    campaign = make_campaign()
    paid_gift(campaign, amount=1000, when=at(2027, 1, 1, 3, 30))  # 31 Dec in New York
    december = make_period(date(2026, 12, 31), date(2026, 12, 31), NY)
    assert reconcile(december).by_currency[0].gross == 1000
    jerusalem = make_period(date(2026, 12, 31), date(2026, 12, 31), ZoneInfo("Asia/Jerusalem"))
    assert reconcile(jerusalem).is_empty


def test_a_campaign_alone(app, ledger_rows):
    from app.finance.common import campaign_by_slug

    result = reconcile(MARCH, campaign_id=campaign_by_slug("ramadan").id)
    assert [line.label for line in result.by_campaign] == ["ramadan"]
    assert result.by_currency[0].gross == 13000
