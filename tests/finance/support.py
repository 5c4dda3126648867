"""Gifts with ledger rows for the finance tests, made through the same services as the app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.db import utcnow
from app.extensions import db
from app.finance.common import make_period
from app.giving.models import Frequency, Gift
from app.giving.services import GivingRules, record_gift_payment, start_gift
from app.payments import ledger
from app.payments.models import Payment
from tests.factories import gift_request

NY = ZoneInfo("America/New_York")
MARCH = make_period("2026-03-01", "2026-03-31", NY)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paid_gift(app, campaign, *, amount: int = 5000, when: datetime | None = None,
              fee: int | None = None, email: str = "noa@example.org", name: str = "Noa Levi",
              frequency: Frequency = Frequency.ONE_TIME, **fields) -> tuple[Gift, Payment]:
    gift = start_gift(campaign, gift_request(amount=amount, email=email, donor_name=name,
                                             currency=campaign.currency, frequency=frequency,
                                             **fields),
                      rules=GivingRules.from_config(app.config), now=utcnow())
    db.session.flush()
    charge = record_gift_payment(
        gift, provider="sandbox", provider_id=f"pi_{gift.public_id}",
        payment_intent_id=f"pi_{gift.public_id}", amount=gift.total,
        currency=campaign.currency, occurred_at=when or utcnow())
    if fee is not None:
        charge.fee, charge.net = fee, charge.amount - fee
    db.session.flush()
    return gift, charge


def refund(charge: Payment, amount: int, when: datetime) -> None:
    ledger.record_refund(charge, refund_id=f"re_{uuid.uuid4().hex}", amount=amount,
                         occurred_at=when)


def dispute(charge: Payment, amount: int, when: datetime, *, won: bool = False) -> None:
    dispute_id = f"dp_{uuid.uuid4().hex}"
    if won:
        ledger.record_dispute_won(charge, dispute_id=dispute_id, amount=amount,
                                  occurred_at=when)
    else:
        ledger.record_dispute(charge, dispute_id=dispute_id, amount=amount, occurred_at=when)
