"""Migration 0011 (``news_article.is_analysis``) up and down on a database holding stories."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app.extensions import db
from tests.support.migrations import columns, rows
from tests.support.news import DIGEST_NOW

BEFORE = "fd3be956c4c3"  # 0010, payouts
REVISION = "5b7e2c9d41a3"  # 0011


def stored() -> list[tuple]:
    return rows("SELECT guid, title, is_top FROM news_article ORDER BY guid")


def test_stories_survive_the_migration_both_ways(unmigrated_app):
    upgrade(revision=BEFORE)
    assert "is_analysis" not in columns("news_article")
    insert = text("INSERT INTO news_article (guid, link, title, summary, author, is_top, "
                  "published_at, ingested_at) VALUES (:guid, :link, :title, '', '', :top, "
                  ":at, :at)")
    for guid, top in (("story-1", True), ("story-2", False)):
        db.session.execute(insert, {"guid": guid, "link": f"https://levantwire.example/{guid}",
                                    "title": f"Title {guid}", "top": top, "at": DIGEST_NOW})
    db.session.commit()
    before = stored()
    assert len(before) == 2

    upgrade(revision=REVISION)
    # Stories stored before are news, not analysis.
    assert rows("SELECT guid, is_analysis FROM news_article ORDER BY guid") == [
        ("story-1", False), ("story-2", False)]
    db.session.execute(text("UPDATE news_article SET is_analysis = :yes "
                            "WHERE guid = 'story-2'"), {"yes": True})
    db.session.commit()

    downgrade(revision=BEFORE)
    assert "is_analysis" not in columns("news_article")
    assert stored() == before
    upgrade()
    assert "is_analysis" in columns("news_article")
