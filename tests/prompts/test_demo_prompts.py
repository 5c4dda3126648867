"""The demo's prompts: made once for each live campaign, and shown by the decision."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.prompts.decide import DonorStatus, ReaderFacts, decide
from app.prompts.demo import seed_prompts
from app.prompts.models import Placement, Prompt
from app.prompts.services import live_candidates
from tests.factories import make_campaign


def test_demo_prompts_once_per_live_campaign(app, now):
    live = make_campaign("live-appeal")
    make_campaign("ended-appeal", days_left=-1, started_days_ago=40)
    assert seed_prompts(now) == 3
    assert seed_prompts(now) == 0
    assert db.session.scalar(select(func.count()).select_from(Prompt)) == 3
    assert {p.campaign_id for p in db.session.scalars(select(Prompt))} == {live.id}
    candidates = live_candidates(now)
    monthly = decide(candidates, ReaderFacts(donor=DonorStatus.MONTHLY), now)
    assert [(c.placement, c.variant) for c in monthly] == [(Placement.INLINE, "a")]
    third_view = decide(candidates, ReaderFacts(views=3, reader_id="r1"), now)
    assert [c.placement for c in third_view] == [Placement.OVERLAY]
