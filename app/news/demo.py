"""Demo news: the regions and topics readers can follow, and the shipped sample feed."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.news.ingest import SAMPLE_FEED, IngestResult, ingest_feed
from app.news.models import CategoryKind
from app.news.services import add_category, get_category, slugify

REGIONS = ["Israel", "Gaza and the Palestinian Territories", "Syria", "Iraq", "Iran", "Lebanon",
           "Afghanistan", "The Gulf and the UAE", "Egypt", "Turkey", "Yemen"]
TOPICS = ["Security", "Diplomacy", "Economy", "Culture", "Humanitarian", "Environment"]


def seed_categories() -> list[str]:
    """Create the categories that do not exist yet (staff may have renamed or removed others:
    only a missing slug is created). Returns the slugs created."""
    created = []
    for kind, names in ((CategoryKind.REGION, REGIONS), (CategoryKind.TOPIC, TOPICS)):
        for position, name in enumerate(names):
            if get_category(slugify(name)) is None:
                add_category(name, kind, position=position)
                created.append(slugify(name))
    return created


def seed_news(now: datetime) -> tuple[list[str], IngestResult]:
    """The categories, then the sample feed with its newest story published ten minutes ago,
    so that the daily email has a day of news to send. Idempotent: the feed's stories are
    stored once, with the times of the first run."""
    created = seed_categories()
    result = ingest_feed(str(SAMPLE_FEED), now=now, rebase_to=now - timedelta(minutes=10))
    return created, result
