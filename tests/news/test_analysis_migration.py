"""Migration 0011 (``news_article.is_analysis``) up and down on a database holding stories."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app.extensions import db
from tests.conftest import migrated_url
from tests.support.news import DIGEST_NOW

BEFORE = "fd3be956c4c3"  # 0010, payouts
REVISION = "5b7e2c9d41a3"  # 0011


def columns() -> set[str]:
    with db.engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns("news_article")}


def stored() -> list[tuple]:
    rows = [tuple(row) for row in db.session.execute(
        text("SELECT guid, title, is_top FROM news_article ORDER BY guid"))]
    db.session.commit()  # a migration waits for the locks of an open transaction
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stories_survive_the_migration_both_ways(request, make_app, backend):
    app = make_app(migrated_url(request, backend, f"analysis_migration_{backend}"))
    with app.app_context():
        downgrade(revision=BEFORE)
        assert "is_analysis" not in columns()
        insert = text("INSERT INTO news_article (guid, link, title, summary, author, is_top, "
                      "published_at, ingested_at) VALUES (:guid, :link, :title, '', '', :top, "
                      ":at, :at)")
        for guid, top in (("story-1", True), ("story-2", False)):
            db.session.execute(insert, {"guid": guid, "link": f"https://levantwire.example/{guid}",
                                        "title": f"Title {guid}", "top": top, "at": DIGEST_NOW})
        db.session.commit()
        before = stored()

        upgrade(revision=REVISION)
        # Stories stored before are news, not analysis.
        assert db.session.execute(text(
            "SELECT guid, is_analysis FROM news_article ORDER BY guid")).all() == [
            ("story-1", False), ("story-2", False)]
        db.session.commit()
        db.session.execute(text("UPDATE news_article SET is_analysis = :yes "
                                "WHERE guid = 'story-2'"), {"yes": True})
        db.session.commit()

        downgrade(revision=BEFORE)
        assert "is_analysis" not in columns()
        assert stored() == before
        upgrade()
        assert "is_analysis" in columns()
        db.session.remove()
        db.engine.dispose()
