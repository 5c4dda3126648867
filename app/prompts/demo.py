"""Demo prompts (``flask seed-demo``): on each live campaign that has none, an overlay for
readers who have not given in a year with copy A and B, a thank-you for monthly donors inline,
and a bottom bar for readers who came from our email; so the decision and the staff pages have
something to show on a fresh machine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select

from app.campaigns.models import Campaign
from app.extensions import db
from app.prompts.models import Placement, Prompt, Reset, Segment


def demo_prompts(campaign: Campaign) -> list[Prompt]:
    common = {"campaign_id": campaign.id, "starts_at": campaign.starts_at,
              "ends_at": campaign.ends_at}
    return [
        Prompt(**common, name=f"{campaign.title}: overlay", placement=Placement.OVERLAY,
               segment=Segment.NON_DONOR, priority=50, start_at_view=3, every_nth_view=3,
               max_times=2, reset=Reset.WEEKLY, gave_hide_days=30,
               headline_a=campaign.title, body_a=campaign.summary, button_a="Give now",
               headline_b="Independent news needs you", body_b=campaign.summary,
               button_b="Support our reporting"),
        Prompt(**common, name=f"{campaign.title}: thank monthly donors",
               placement=Placement.INLINE, segment=Segment.MONTHLY_DONOR, priority=10,
               max_times=1, reset=Reset.MONTHLY, gave_hide_days=0,
               headline_a="Thank you for giving every month",
               body_a="Your monthly gift keeps our correspondents in the field.",
               button_a="See the campaign"),
        Prompt(**common, name=f"{campaign.title}: from the daily email",
               placement=Placement.BOTTOM_BAR, segment=Segment.FROM_EMAIL, priority=30,
               max_times=3, reset=Reset.DAILY, headline_a="You read us every day",
               body_a="", button_a="Give"),
    ]


def seed_prompts(now: datetime) -> int:
    """The demo prompts of each live campaign without any; how many were made."""
    campaigns = db.session.scalars(
        select(Campaign).where(Campaign.published, Campaign.paused_at.is_(None),
                               Campaign.starts_at <= now, Campaign.ends_at > now,
                               ~exists().where(Prompt.campaign_id == Campaign.id))).all()
    made = [p for campaign in campaigns for p in demo_prompts(campaign)]
    db.session.add_all(made)
    db.session.flush()
    return len(made)
