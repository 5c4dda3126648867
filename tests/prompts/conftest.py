"""Prompts fixtures: the newsroom's site among EMBED_ORIGINS, a live campaign, a prompt on it,
and the staff client of tests/staff (request-scoped, signed in by role). The decision's own
tests (test_decide.py) take none of them: they need no app."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from app.extensions import db
from app.prompts.models import Placement, Prompt, Segment
from tests.factories import make_campaign
from tests.staff.conftest import as_role, client  # noqa: F401

NEWSROOM = "https://news.example"
ARTICLE = f"{NEWSROOM}/2026/12/gaza-water"


@pytest.fixture
def newsroom(app):
    """The newsroom's site among EMBED_ORIGINS (the embed endpoints' tests use it)."""
    app.config["EMBED_ORIGINS"] = [NEWSROOM]


@pytest.fixture
def campaign(app):
    return make_campaign("winter-appeal", title="Winter appeal")


def add_prompt(campaign, **fields) -> Prompt:
    now = utcnow()
    values = dict(name="Overlay for everyone", placement=Placement.OVERLAY,
                  segment=Segment.EVERYONE, priority=100, starts_at=now - timedelta(days=1),
                  ends_at=now + timedelta(days=10), headline_a="Stand with our reporters",
                  body_a="Independent news costs money.", button_a="Give now",
                  headline_b="Keep this newsroom free", body_b="", button_b="Support us")
    values.update(fields)
    prompt = Prompt(campaign_id=campaign.id, **values)
    db.session.add(prompt)
    db.session.commit()
    return prompt


@pytest.fixture
def prompt(campaign):
    return add_prompt(campaign)
