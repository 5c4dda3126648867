"""A signed-in supporter's giving: their gifts, their plans, and restarting a cancelled plan.

Every lookup is scoped to the supporter, so a gift or plan id of someone else's finds nothing.
Changing and cancelling plans go through ``giving.services`` (which speak to the provider).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import selectinload

from app.accounts.models import Supporter
from app.campaigns.services import list_campaigns
from app.extensions import db
from app.giving.models import Gift, GiftStatus, PlanStatus, RecurringPlan
from app.giving.services import GiftError, GiftRequest, GivingRules, start_gift


def giving_history(supporter: Supporter) -> list[Gift]:
    """Every gift made, newest first; checkouts never completed are left out."""
    return list(db.session.scalars(
        select(Gift).where(Gift.supporter_id == supporter.id,
                           Gift.status != GiftStatus.PENDING)
        .options(selectinload(Gift.campaign))
        .order_by(Gift.created_at.desc(), Gift.id.desc())
    ))


def gift_for(supporter: Supporter, public_id: str) -> Gift | None:
    return db.session.scalar(select(Gift).where(
        Gift.public_id == public_id, Gift.supporter_id == supporter.id,
        Gift.status != GiftStatus.PENDING))


def supporter_plans(supporter: Supporter) -> list[RecurringPlan]:
    """Monthly and yearly gifts, running ones first."""
    canceled_last = case((RecurringPlan.status == PlanStatus.CANCELED, 1), else_=0)
    return list(db.session.scalars(
        select(RecurringPlan).where(RecurringPlan.supporter_id == supporter.id)
        .options(selectinload(RecurringPlan.campaign))
        .order_by(canceled_last, RecurringPlan.started_at.desc(), RecurringPlan.id.desc())
    ))


def plan_for(supporter: Supporter, plan_id: int) -> RecurringPlan | None:
    return db.session.scalar(select(RecurringPlan).where(
        RecurringPlan.id == plan_id, RecurringPlan.supporter_id == supporter.id))


def restart_plan(plan: RecurringPlan, *, rules: GivingRules, now: datetime,
                 submission_key: str) -> Gift:
    """A new monthly or yearly gift at a cancelled plan's amount, pending its checkout.

    It goes to the plan's campaign while that takes gifts, else to the open appeal in the same
    currency that ends soonest. A repeated submission returns the gift it already started.
    """
    if plan.status is not PlanStatus.CANCELED:
        raise GiftError(None, "This gift is still running, so there is nothing to restart.")
    campaign = plan.campaign
    if not campaign.is_live(now):
        live = [c for c in list_campaigns(now)[0] if c.currency == plan.currency]
        if not live:
            raise GiftError(None, f"No appeal is taking gifts in {plan.currency} right now. "
                                  "Please try again when the next one opens.")
        campaign = live[0]
    supporter = plan.supporter
    first = plan.gifts[0] if plan.gifts else None
    donor_name = supporter.name or (first.donor_name if first else "") or \
        supporter.email.partition("@")[0]
    return start_gift(campaign, GiftRequest(
        amount=plan.amount, currency=plan.currency, frequency=plan.frequency,
        donor_name=donor_name, email=supporter.email, submission_key=submission_key,
        cover_fee=bool(plan.fee_covered), anonymous=first.anonymous if first else False,
    ), rules=rules, now=now)
