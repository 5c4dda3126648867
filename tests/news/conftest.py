"""News fixtures: the demo categories, and the shipped sample feed at its own (fixed) times."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.news.demo import seed_categories
from app.news.ingest import SAMPLE_FEED, ingest_feed
from app.news.services import list_categories
from tests.support.news import DIGEST_NOW


@pytest.fixture
def categories(app):
    seed_categories()
    db.session.commit()
    return {c.slug: c for c in list_categories()}


@pytest.fixture
def stories(categories):
    result = ingest_feed(str(SAMPLE_FEED), now=DIGEST_NOW)
    db.session.commit()
    assert result.new == 33
    return result
