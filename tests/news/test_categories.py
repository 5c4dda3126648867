"""Categories and topics: managed from the command line (staff pages come later), seeded by
seed-demo together with the sample feed."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.news.models import Article, Category, Follow
from app.news.services import set_follow
from tests.support.news import verified_supporter


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_add_list_rename_remove(app, stories):
    runner = app.test_cli_runner()
    added = runner.invoke(args=["news", "categories", "add", "Jordan", "--kind", "region"])
    assert added.exit_code == 0, added.output
    assert "added region jordan: Jordan" in added.output
    renamed = runner.invoke(args=["news", "categories", "add", "The Hashemite Kingdom of Jordan",
                                  "--kind", "region", "--slug", "jordan"])
    assert "updated region jordan: The Hashemite Kingdom of Jordan" in renamed.output
    listing = runner.invoke(args=["news", "categories", "list"]).output.splitlines()
    assert listing[0].split()[:2] == ["region", "israel"]
    assert any(line.split()[:2] == ["region", "jordan"] for line in listing)
    assert listing[-1].split()[:2] == ["topic", "environment"]

    syria = db.session.scalar(select(Category).where(Category.slug == "syria"))
    set_follow(verified_supporter().id, syria, True)
    db.session.commit()
    articles = count(Article)
    removed = runner.invoke(args=["news", "categories", "remove", "syria"])
    assert removed.exit_code == 0 and "removed syria" in removed.output
    assert count(Follow) == 0 and count(Article) == articles  # the stories stay
    missing = runner.invoke(args=["news", "categories", "remove", "syria"])
    assert missing.exit_code == 1 and "no category 'syria'" in missing.output


def test_bad_category_input(app, categories):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["news", "categories", "add", "Mars"]).exit_code == 2  # no kind
    bad = runner.invoke(args=["news", "categories", "add", "!!!", "--kind", "topic"])
    assert bad.exit_code == 1 and "letters or digits" in bad.output


def test_seed_demo_loads_categories_and_recent_stories_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "news categories created: 17; sample feed: 33 new stories" in first.output
    newest = db.session.scalar(select(func.max(Article.published_at)))
    from app.db import utcnow

    assert 0 < (utcnow() - newest).total_seconds() < 3600  # the demo's news is today's
    second = runner.invoke(args=["seed-demo"])
    assert "news categories created: 0; sample feed: 0 new stories, 33 already there" \
        in second.output
    assert count(Article) == 33 and count(Category) == 17
