"""Payouts: what the provider sent to the bank, and which ledger rows each one paid out.

A payout event (``payout.paid``, ``payout.failed``, ``payout.canceled``,
``payout.reconciliation_completed``) stores or updates the payout (:func:`record_payout`). Once
the provider says its balance transactions can be listed (``reconciliation_status`` completed:
Stripe documents that an automatic payout's transactions are final then, which may be some days
after it is paid), they are fetched once and stored (:func:`record_transactions`), each with
the ledger row it should be (``PayoutTransaction.ledger_kind`` and ``ledger_ref``).

Order and repetition: events for one payout may come twice and in any order. The status only
moves forward (a stale ``payout.paid`` after ``payout.failed`` changes nothing), the
reconciliation status never goes back from completed, and transactions are inserted once each
under their unique (provider, transaction id).

Linking: a transaction is joined to its ledger row when the figures are read (:func:`matches`),
never stored as a foreign key. A payout reported before the charge, refund or dispute it pays
out is therefore linked as soon as that row is recorded, whichever event brings it and however
late: nothing has to be retried or swept. Transactions that match no row (the provider's own
fees, adjustments of other origins, charges not made through this app, or rows in another
currency than the payout's) stay in the table and are counted as not in the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from app.db import insert, utcnow
from app.extensions import db
from app.payments import ledger
from app.payments.base import BalanceTransaction
from app.payments.models import Payment, PaymentKind, Payout, PayoutTransaction

#: How far along a payout is; a status never moves to a lower rank (events come out of order).
#: A paid payout may still fail (its bank returns it), so failed outranks paid.
STATUS_RANK = {"pending": 0, "in_transit": 1, "paid": 2, "failed": 3, "canceled": 3}

CHARGE_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})


def record_payout(provider_name: str, obj: dict) -> Payout:
    """Store a payout from the provider's object, or bring the stored one up to date; locked
    for the rest of the transaction (PostgreSQL), so two workers apply its events in turn."""
    db.session.execute(insert(Payout).values(
        provider=provider_name, provider_id=obj["id"], amount=obj["amount"],
        currency=obj["currency"].upper(), status=obj["status"],
        arrival_date=datetime.fromtimestamp(obj["arrival_date"], UTC).date(),
        automatic=bool(obj.get("automatic", True)),
        created=datetime.fromtimestamp(obj["created"], UTC),
        reconciliation_status=obj.get("reconciliation_status"),
        failure_message=(obj.get("failure_message") or "")[:500] or None, updated_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["provider", "provider_id"]))
    payout = db.session.execute(
        select(Payout).where(Payout.provider == provider_name, Payout.provider_id == obj["id"])
        .with_for_update().execution_options(populate_existing=True)).scalar_one()
    status = obj["status"]
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(payout.status, -1):
        payout.status = status
        # The bank may move the day; a later status carries the later word on it.
        payout.arrival_date = datetime.fromtimestamp(obj["arrival_date"], UTC).date()
    if obj.get("failure_message"):
        payout.failure_message = obj["failure_message"][:500]
    if payout.reconciliation_status != "completed" and obj.get("reconciliation_status"):
        payout.reconciliation_status = obj["reconciliation_status"]
    return payout


def needs_transactions(payout: Payout) -> bool:
    """Whether its transactions can be listed now and have not been yet."""
    return (payout.transactions_fetched_at is None and payout.automatic
            and payout.reconciliation_status == "completed")


def classify(txn: BalanceTransaction) -> tuple[PaymentKind | None, str | None]:
    """The ledger row a balance transaction should be: (kind, the id to find it by)."""
    source = txn.source_id
    if not source:
        return None, None
    if txn.type in CHARGE_TYPES:
        return PaymentKind.CHARGE, source
    if txn.type in REFUND_TYPES:
        return PaymentKind.REFUND, source
    if txn.type == "adjustment" and source.startswith("du_"):
        # A dispute withdraws the money (negative); winning it reinstates it (positive).
        reinstated = (txn.reporting_category == "dispute_reversal"
                      or (txn.reporting_category != "dispute" and txn.amount > 0))
        if reinstated:
            return PaymentKind.DISPUTE_WON, ledger.dispute_won_id(source)
        return PaymentKind.DISPUTE, source
    return None, None


def record_transactions(payout: Payout, transactions: Iterable[BalanceTransaction]) -> int:
    """Store the payout's balance transactions once each (the payout's own debit left out),
    and its count and fee total. Returns how many there are."""
    rows = []
    for txn in transactions:
        if txn.type == "payout" and txn.source_id == payout.provider_id:
            continue
        kind, ref = classify(txn)
        rows.append({
            "payout_id": payout.id, "provider": payout.provider, "transaction_id": txn.id,
            "type": txn.type[:50], "source_id": txn.source_id, "ledger_kind": kind,
            "ledger_ref": ref,
            "payment_intent_id": txn.payment_intent_id if kind is PaymentKind.CHARGE else None,
            "amount": txn.amount, "fee": txn.fee, "net": txn.net,
            "currency": txn.currency.upper(),
        })
    for start in range(0, len(rows), 500):
        db.session.execute(insert(PayoutTransaction).values(rows[start:start + 500])
                           .on_conflict_do_nothing(
                               index_elements=["provider", "transaction_id"]))
    count, fees = db.session.execute(
        select(func.count(), func.coalesce(func.sum(PayoutTransaction.fee), 0))
        .where(PayoutTransaction.payout_id == payout.id)).one()
    payout.transaction_count, payout.fee_total = count, fees
    payout.transactions_fetched_at = utcnow()
    return count


def matches(txn, payment):
    """The join condition between a payout's transaction and the ledger row it pays out
    (both may be aliases): same provider, kind and currency, and the row's own id, charge id
    or payment intent is the one the transaction names."""
    return and_(
        payment.provider == txn.provider,
        payment.kind == txn.ledger_kind,
        payment.currency == txn.currency,
        or_(payment.provider_id == txn.ledger_ref, payment.charge_id == txn.ledger_ref,
            payment.payment_intent_id == txn.payment_intent_id),
    )


def linked_payments(payout_ids: list[int]):
    """(payout_id, payment_id) of every ledger row the payouts paid out, each once: a
    subquery."""
    txn = aliased(PayoutTransaction, name="ptx")
    payment = aliased(Payment, name="lp")
    return (select(txn.payout_id.label("payout_id"), payment.id.label("payment_id"))
            .join(payment, matches(txn, payment)).where(txn.payout_id.in_(payout_ids))
            .distinct().subquery("linked"))


def unmatched_transactions(payout_ids: list[int]):
    """The payouts' transactions that match no ledger row: a select of PayoutTransaction."""
    payment = aliased(Payment, name="um")
    return select(PayoutTransaction).where(
        PayoutTransaction.payout_id.in_(payout_ids),
        ~select(payment.id).where(matches(PayoutTransaction, payment)).exists())


def payout_by_id(provider_id: str) -> Payout | None:
    return db.session.scalar(select(Payout).where(Payout.provider_id == provider_id))
