"""Reconciliation of a period from the ledger: gross, provider fees, refunds, disputes, dispute
fees and net, per currency, per campaign and per payment method, plus payouts where the
provider reports them.

Every figure is a sum of ``Payment`` rows whose time falls in the period (whole days in the
organisation's zone), the same rows and the same arithmetic as the gift export of that period
(``app.finance.exports``), so each figure equals the sum of the export's column for the same
filters; ``Line.filters`` names those filters for the page that will link a figure to its rows.
Amounts in different currencies are never added together.

Payouts (``payouts``): each payout whose arrival day falls in the period, as the provider
reported it (its amount, status, the balance transactions it paid out), beside the sums of the
ledger rows those transactions are (``app.payments.payouts``), figured the same way as the
lines above. ``PayoutLine.difference`` is the provider's amount less our net less the
transactions that are not in the ledger (its own fees, say): 0 when our ledger agrees with
every transaction, anything else is what finance must look into (a fee not known yet, a
row recorded differently). Each payout's ``filters`` and ``span`` name the export
of exactly its rows (the ``payout`` filter, in the payout's currency, over the days its rows
fall on). Payouts are not split by campaign: with a campaign chosen, none are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.extensions import db
from app.finance.common import Period
from app.payments.models import Payment, PaymentKind, Payout
from app.payments.payouts import linked_payments, unmatched_transactions

PAYOUTS_NOTE = ("No payout arrives in this period. The sandbox provider makes none; Stripe's "
                "are recorded from its payout events.")
PAYOUTS_CAMPAIGN_NOTE = ("Payouts are not split by campaign: choose all campaigns to see "
                         "them.")


@dataclass
class Line:
    """The money of one group (a currency, or a campaign or method in one currency)."""

    currency: str
    label: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    # The days of the export behind the figures, when not the reconciliation's period.
    span: tuple[date, date] | None = None
    charges: int = 0  # how many charges
    gross: int = 0
    fees: int = 0  # fees the provider reported
    fees_unknown: int = 0  # charges whose fee is not reported yet (counted as 0 in ``fees``)
    refunds: int = 0
    refund_count: int = 0
    disputes: int = 0  # disputes opened less disputes won
    dispute_count: int = 0
    # The provider's dispute fees, less any it returned when a dispute was won.
    dispute_fees: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.fees - self.refunds - self.disputes - self.dispute_fees

    @property
    def raised(self) -> int:
        """Gross less refunds and disputes, before the provider's fees: what the campaign
        dashboards call raised."""
        return self.gross - self.refunds - self.disputes

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
            self.dispute_fees += fees
        elif kind is PaymentKind.DISPUTE_WON:
            self.disputes -= amount
            self.dispute_fees += fees  # negative when the provider returned the fee


@dataclass
class PayoutLine(Line):
    """One payout: the provider's figures, and our ledger's for the rows it paid out."""

    provider: str = ""
    status: str = ""
    arrival_date: date | None = None
    amount: int = 0  # what the provider sent to the bank
    transactions: int | None = None  # how many it paid out; None: not listed yet
    provider_fees: int | None = None  # the provider's fees in them
    unmatched_count: int = 0  # transactions that are no ledger row
    unmatched_net: int = 0  # their net
    # False for a manual payout: the provider cannot say which transactions it paid out.
    automatic: bool = True

    @property
    def listed(self) -> bool:
        return self.transactions is not None

    @property
    def difference(self) -> int:
        """The provider's amount less our net less what is not in the ledger: 0 when they
        agree."""
        return self.amount - self.net - self.unmatched_net


@dataclass
class Reconciliation:
    period: Period
    by_currency: list[Line]
    by_campaign: list[Line]
    by_method: list[Line]
    payouts: list[PayoutLine] = field(default_factory=list)
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
        payouts=payout_lines(period) if campaign_id is None else [],
        payouts_note=PAYOUTS_NOTE if campaign_id is None else PAYOUTS_CAMPAIGN_NOTE,
    )


def payout_lines(period: Period) -> list[PayoutLine]:
    """The payouts arriving in the period, in order of arrival, each with the sums of the
    ledger rows it paid out (three queries, whatever the number of payouts)."""
    payouts = db.session.scalars(
        select(Payout).where(Payout.arrival_date >= period.first,
                             Payout.arrival_date <= period.last)
        .order_by(Payout.arrival_date, Payout.id)).all()
    if not payouts:
        return []
    lines = {p.id: PayoutLine(
        currency=p.currency, label=p.provider_id,
        filters={"payout": p.provider_id, "currency": p.currency}, provider=p.provider,
        status=p.status, arrival_date=p.arrival_date, amount=p.amount,
        transactions=p.transaction_count if p.transactions_fetched_at else None,
        provider_fees=p.fee_total, automatic=p.automatic) for p in payouts}
    ids = list(lines)
    linked = linked_payments(ids)
    charge = Payment.kind == PaymentKind.CHARGE
    rows = db.session.execute(
        select(linked.c.payout_id, Payment.kind, func.count(), func.sum(Payment.amount),
               func.coalesce(func.sum(Payment.fee), 0),
               func.count().filter(charge, Payment.fee.is_(None)),
               func.min(Payment.occurred_at), func.max(Payment.occurred_at))
        .join(Payment, Payment.id == linked.c.payment_id)
        .group_by(linked.c.payout_id, Payment.kind)).all()
    for payout_id, kind, count, amount, fees, unknown, first, last in rows:
        kind = PaymentKind(kind)
        line = lines[payout_id]
        line.add(kind, count, amount, fees, unknown)
        days = (first.astimezone(period.zone).date(), last.astimezone(period.zone).date())
        line.span = days if line.span is None else (min(line.span[0], days[0]),
                                                    max(line.span[1], days[1]))
    unmatched = unmatched_transactions(ids).subquery()
    for payout_id, count, net in db.session.execute(
            select(unmatched.c.payout_id, func.count(), func.sum(unmatched.c.net))
            .group_by(unmatched.c.payout_id)):
        lines[payout_id].unmatched_count, lines[payout_id].unmatched_net = count, net
    return list(lines.values())
