"""Test data builders that go through the same services the app uses."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.campaigns.models import Campaign, CampaignKind, SuggestedAmount
from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency
from app.giving.services import GiftRequest


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
