"""Demo news: the regions and topics readers can follow, and the shipped sample feed."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.news.ingest import (
    SAMPLE_FEED,
    FeedEntry,
    IngestResult,
    Unusable,
    fetch_feed,
    ingest_entries,
    parse_feed,
)
from app.news.models import CategoryKind
from app.news.services import add_category, get_category, slugify

REGIONS = ["Israel", "Gaza and the Palestinian Territories", "Syria", "Iraq", "Iran", "Lebanon",
           "Afghanistan", "The Gulf and the UAE", "Egypt", "Turkey", "Yemen"]
TOPICS = ["Security", "Diplomacy", "Economy", "Culture", "Humanitarian", "Environment"]
# The newsroom's story addresses carry their day: https://levantwire.example/2026/11/24/<slug>
_DATED_PATH = re.compile(r"/\d{4}/\d{2}/\d{2}/")


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


def rebase_entries(entries: list[FeedEntry | Unusable], newest: datetime,
                   zone: ZoneInfo) -> list[FeedEntry | Unusable]:
    """The feed's stories moved in time together, the newest published at ``newest``, each
    address's day moved with it (the day in the organisation's zone)."""
    dated = [e.published_at for e in entries if isinstance(e, FeedEntry)]
    if not dated:
        return entries
    shift = newest - max(dated)
    moved = []
    for entry in entries:
        if isinstance(entry, FeedEntry):
            when = entry.published_at + shift
            day = when.astimezone(zone).strftime("/%Y/%m/%d/")
            entry = replace(entry, published_at=when,
                            link=_DATED_PATH.sub(day, entry.link, count=1))
        moved.append(entry)
    return moved


def seed_news(now: datetime, zone: ZoneInfo) -> tuple[list[str], IngestResult]:
    """The categories, then the sample feed with its newest story published ten minutes ago,
    so that the daily email has a day of news to send. Idempotent: the feed's stories are
    stored once, with the times of the first run."""
    created = seed_categories()
    data, address = fetch_feed(str(SAMPLE_FEED))
    entries, _ = parse_feed(data, now=now, address=address)
    result = ingest_entries(rebase_entries(entries, now - timedelta(minutes=10), zone), now=now)
    return created, result
