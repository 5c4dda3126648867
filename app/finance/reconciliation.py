"""Reconciliation of a period from the ledger: gross, provider fees, refunds, disputes and net,
per currency, per campaign and per payment method, plus payouts where the provider reports them.

Every figure is a sum of ``Payment`` rows whose time falls in the period (whole days in the
organisation's zone), the same rows and the same arithmetic as the gift export of that period
(``app.finance.exports``), so each figure equals the sum of the export's column for the same
filters; ``Line.filters`` names those filters for the page that will link a figure to its rows.
Amounts in different currencies are never added together.

Payouts: the sandbox provider makes none, and Stripe's payouts are not fetched yet, so
``payouts`` is empty and ``payouts_note`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.extensions import db
from app.finance.common import Period
from app.payments.models import Payment, PaymentKind

PAYOUTS_NOTE = ("Payouts are not reconciled here yet: the sandbox provider makes none, and "
                "Stripe's payout reports are not fetched. Match the net per currency against "
                "the provider's payout report.")


@dataclass
class Line:
    """The money of one group (a currency, or a campaign or method in one currency)."""

    currency: str
    label: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    charges: int = 0  # how many charges
    gross: int = 0
    fees: int = 0  # fees the provider reported
    fees_unknown: int = 0  # charges whose fee is not reported yet (counted as 0 in ``fees``)
    refunds: int = 0
    refund_count: int = 0
    disputes: int = 0  # disputes opened less disputes won
    dispute_count: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.fees - self.refunds - self.disputes

    def add(self, kind: PaymentKind, count: int, amount: int, fees: int, unknown: int) -> None:
        if kind is PaymentKind.CHARGE:
            self.charges += count
            self.gross += amount
            self.fees += fees
            self.fees_unknown += unknown
        elif kind is PaymentKind.REFUND:
            self.refunds += amount
            self.refund_count += count
        elif kind is PaymentKind.DISPUTE:
            self.disputes += amount
            self.dispute_count += count
        elif kind is PaymentKind.DISPUTE_WON:
            self.disputes -= amount


@dataclass
class Reconciliation:
    period: Period
    by_currency: list[Line]
    by_campaign: list[Line]
    by_method: list[Line]
    payouts: list = field(default_factory=list)
    payouts_note: str = PAYOUTS_NOTE

    @property
    def fees_unknown(self) -> int:
        return sum(line.fees_unknown for line in self.by_currency)

    @property
    def is_empty(self) -> bool:
        return not self.by_currency


def reconcile(period: Period, *, campaign_id: int | None = None) -> Reconciliation:
    """The period's figures, computed in one grouped query over the ledger."""
    charge = Payment.kind == PaymentKind.CHARGE
    query = (
        select(Payment.currency, Payment.campaign_id, Payment.provider, Payment.kind,
               func.count(), func.sum(Payment.amount),
               func.coalesce(func.sum(Payment.fee), 0),
               func.count().filter(charge, Payment.fee.is_(None)))
        .where(Payment.occurred_at >= period.start, Payment.occurred_at < period.end)
        .group_by(Payment.currency, Payment.campaign_id, Payment.provider, Payment.kind)
    )
    if campaign_id is not None:
        query = query.where(Payment.campaign_id == campaign_id)
    rows = db.session.execute(query).all()
    campaigns = dict(db.session.execute(select(Campaign.id, Campaign.slug).where(
        Campaign.id.in_({row[1] for row in rows}))).all()) if rows else {}
    by_currency: dict[str, Line] = {}
    by_campaign: dict[tuple[str, str], Line] = {}
    by_method: dict[tuple[str, str], Line] = {}
    for currency, campaign, method, kind, count, amount, fees, unknown in rows:
        kind = PaymentKind(kind)
        fees = fees if kind is PaymentKind.CHARGE else 0
        slug = campaigns[campaign]
        lines = (
            by_currency.setdefault(currency, Line(currency, currency, {"currency": currency})),
            by_campaign.setdefault((slug, currency), Line(
                currency, slug, {"campaign": slug, "currency": currency})),
            by_method.setdefault((method, currency), Line(
                currency, method, {"method": method, "currency": currency})),
        )
        for line in lines:
            line.add(kind, count, amount, fees, unknown)
    return Reconciliation(
        period=period,
        by_currency=[by_currency[k] for k in sorted(by_currency)],
        by_campaign=[by_campaign[k] for k in sorted(by_campaign)],
        by_method=[by_method[k] for k in sorted(by_method)],
    )
