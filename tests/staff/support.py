"""Gifts with ledger rows for the staff tests, made through the same services as the app."""

from __future__ import annotations

import uuid
from datetime import datetime

from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency, Gift
from app.giving.services import GivingRules, record_gift_payment, start_gift
from app.payments import ledger
from app.payments.models import Payment
from tests.factories import gift_request


def paid_gift(app, campaign, *, amount: int = 5000, when: datetime | None = None,
              email: str = "noa@example.org", name: str = "Noa Levi",
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
    db.session.flush()
    return gift, charge


def refund(charge: Payment, amount: int, when: datetime) -> None:
    ledger.record_refund(charge, refund_id=f"re_{uuid.uuid4().hex}", amount=amount,
                         occurred_at=when)


def dispute(charge: Payment, amount: int, when: datetime) -> None:
    ledger.record_dispute(charge, dispute_id=f"dp_{uuid.uuid4().hex}", amount=amount,
                          occurred_at=when)
