"""Migration 0014 (a story's link: http(s) only, no longer unique) up and down on a database
holding stories and their categories."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from tests.support.migrations import rows
from tests.support.news import DIGEST_NOW

BEFORE = "3e9a7c51d2b8"  # 0013, account sessions
REVISION = "656dec34a38f"  # 0014


def add_story(guid: str, link: str) -> None:
    db.session.execute(text(
        "INSERT INTO news_article (guid, link, title, summary, author, is_top, is_analysis, "
        "published_at, ingested_at) VALUES (:guid, :link, :guid, '', '', :no, :no, :at, :at)"),
        {"guid": guid, "link": link, "no": False, "at": DIGEST_NOW})
    db.session.execute(text(
        "INSERT INTO news_article_category (article_id, category_id) "
        "SELECT id, (SELECT min(id) FROM news_category) FROM news_article WHERE guid = :guid"),
        {"guid": guid})


def stories() -> list[tuple]:
    """Each story's guid, link and number of categories."""
    return rows("SELECT guid, link, (SELECT count(*) FROM news_article_category "
                "WHERE article_id = news_article.id) FROM news_article ORDER BY guid")


def test_links_are_checked_and_shared_both_ways(unmigrated_app):
    upgrade(revision=BEFORE)
    db.session.execute(text("INSERT INTO news_category (slug, name, kind, position, "
                            "created_at) VALUES ('syria', 'Syria', 'region', 0, :at)"),
                       {"at": DIGEST_NOW})
    add_story("a", "https://levantwire.example/a")
    add_story("b", "HTTPS://levantwire.example/b")
    add_story("c", "javascript:alert(1)")
    add_story("d", "/2026/11/24/relative")
    db.session.commit()
    assert len(stories()) == 4

    upgrade(revision=REVISION)
    # Every story with a web link keeps its categories; the scheme is in lower case; the
    # others are gone.
    assert stories() == [("a", "https://levantwire.example/a", 1),
                         ("b", "https://levantwire.example/b", 1)]
    add_story("e", "https://levantwire.example/a")  # a link two ids share
    db.session.commit()
    with pytest.raises(IntegrityError):
        add_story("f", "data:text/html,<script>alert(1)</script>")
    db.session.rollback()

    downgrade(revision=BEFORE)
    # The old schema holds one story per link: the first stored keeps it.
    assert stories() == [("a", "https://levantwire.example/a", 1),
                         ("b", "https://levantwire.example/b", 1)]
    upgrade()
    assert len(stories()) == 2
