"""Test data builders, the one home for each: campaigns, gifts and their ledger rows, made
through the same services the app uses and committed like real data (a savepoint in the test's
transaction, so a view's rollback of its own work leaves them in place).

Domain-specific helpers stay beside their tests (``tests/support/``, a package's
``support.py``); a builder two packages need lives here.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app

from app.campaigns.models import Campaign, CampaignKind, SuggestedAmount
from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency, Gift
from app.giving.services import (
    GiftRequest,
    GivingRules,
    record_gift_payment,
    refundable,
    start_gift,
)
from app.payments import ledger
from app.payments.base import PaymentProvider
from app.payments.models import Payment
from app.templating import org_zone


def make_campaign(slug: str = "test-appeal", *, days_left: int = 30, started_days_ago: int = 10,
                  goal: int = 1_000_000, currency: str = "USD", **fields) -> Campaign:
    now = utcnow()
    campaign = Campaign(
        slug=slug, title=fields.pop("title", "A test appeal"),
        kind=fields.pop("kind", CampaignKind.ANNIVERSARY),
        summary="Help us report.", appeal_markdown=fields.pop("appeal_markdown", "Dear friend,"),
        signatory_name="Miriam Haddad", signatory_title="Founder",
        thank_you_message=fields.pop("thank_you_message", "Thank you for standing with us."),
        starts_at=now - timedelta(days=started_days_ago), ends_at=now + timedelta(days=days_left),
        goal_amount=goal, currency=currency,
        default_frequency=fields.pop("default_frequency", Frequency.ONE_TIME), **fields,
    )
    campaign.suggested_amounts = [
        SuggestedAmount(amount=2500, impact="a day of fixing", position=0),
        SuggestedAmount(amount=5000, impact="safety gear", position=1),
        SuggestedAmount(amount=10000, impact="a week of translation", position=2),
    ]
    db.session.add(campaign)
    # Committed like real data (a savepoint in the test's transaction), so a view's rollback
    # of its own work leaves it in place.
    db.session.commit()
    return campaign


def gift_request(**fields) -> GiftRequest:
    values = dict(amount=2500, currency="USD", frequency=Frequency.ONE_TIME,
                  donor_name="Noa Levi", email="noa@example.org",
                  submission_key=uuid.uuid4().hex)
    values.update(fields)
    return GiftRequest(**values)


def paid_gift(campaign, email: str = "noa@example.org", *, amount: int = 5000,
              name: str = "Noa Levi", when: datetime | None = None, fee: int | None = None,
              frequency: Frequency = Frequency.ONE_TIME, commit: bool = True,
              **fields) -> tuple[Gift, Payment]:
    """A gift to ``campaign`` paid in the ledger at ``when`` (default now), as the provider's
    paid event records it, with the provider's ``fee`` when given; ``fields`` go to the gift
    request (dedication, utm, submission_key...). Returns the gift and its charge. ``commit``
    False: flushed only, for a test that commits or rolls back itself."""
    gift = start_gift(campaign, gift_request(amount=amount, email=email, donor_name=name,
                                             currency=campaign.currency, frequency=frequency,
                                             **fields),
                      rules=GivingRules.from_config(current_app.config), now=utcnow())
    db.session.flush()
    charge = record_gift_payment(
        gift, provider="sandbox", provider_id=f"pi_{gift.public_id}",
        payment_intent_id=f"pi_{gift.public_id}", amount=gift.total,
        currency=campaign.currency, occurred_at=when or utcnow(), zone=org_zone())
    if fee is not None:
        charge.fee, charge.net = fee, charge.amount - fee
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return gift, charge


def refund(charge: Payment, amount: int, when: datetime) -> None:
    """A refund of ``amount`` at ``when`` in the ledger, the receipt following it."""
    ledger.record_refund(charge, refund_id=f"re_{uuid.uuid4().hex}", amount=amount,
                         occurred_at=when)
    ledger.follow_money(charge, zone=org_zone())


def refund_gift(gift: Gift, provider: PaymentProvider, *, now: datetime,
                amount: int | None = None) -> Payment:
    """Give back all of a gift's charge not refunded yet, or ``amount`` of it, through the
    provider (with an idempotency key), and record it as the refund's event would (staff
    refunds go through ``request_refund``, which leaves the recording to the event)."""
    charge, already, amount = refundable(gift, amount)
    result = provider.refund(payment_intent_id=charge.payment_intent_id,
                             charge_id=charge.charge_id, amount=amount,
                             idempotency_key=f"refund-{charge.id}-{already}-{amount}")
    ledger.record_refund(charge, refund_id=result.id, amount=result.amount, occurred_at=now)
    ledger.follow_money(charge, zone=org_zone())
    return charge


def dispute(charge: Payment, amount: int, when: datetime, *, won: bool = False) -> None:
    """A dispute of ``amount`` opened at ``when``, lost (the money is gone) or ``won``."""
    dispute_id = f"dp_{uuid.uuid4().hex}"
    if won:
        ledger.record_dispute_won(charge, dispute_id=dispute_id, amount=amount,
                                  occurred_at=when)
    else:
        ledger.record_dispute(charge, dispute_id=dispute_id, amount=amount, occurred_at=when)
    ledger.follow_money(charge, zone=org_zone())
