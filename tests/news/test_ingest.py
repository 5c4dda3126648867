"""Feed ingest: stored once by id or link, tagged by category terms, every bad feed refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.news.ingest import SAMPLE_FEED, FeedError, ingest_feed
from app.news.models import Article, Category
from tests.support.feeds import item, rss, serving, write
from tests.support.news import DIGEST_NOW, FEED_NEWEST

NOW = DIGEST_NOW


def articles() -> dict[str, Article]:
    return {a.title: a for a in db.session.scalars(select(Article))}


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(Article))


def test_sample_feed_is_stored_and_tagged(categories, stories):
    assert count() == 33
    stored = articles()
    cairo = stored["Truce talks resume in Cairo as mediators table a phased plan"]
    # Terms matched by name ("Diplomacy"), slug ("gaza-and-the-...") and any letter case.
    assert {c.slug for c in cairo.categories} == {
        "diplomacy", "egypt", "gaza-and-the-palestinian-territories", "israel"}
    assert cairo.is_top  # the "top-story" term
    assert cairo.published_at == FEED_NEWEST
    assert cairo.link.startswith("https://levantwire.example/2026/11/24/")
    assert cairo.summary.startswith("Egyptian and Qatari mediators")  # tags stripped
    assert "<p>" not in cairo.summary
    dubai = stored["Dubai's property boom draws buyers from Russia and Iran"]
    assert {c.slug for c in dubai.categories} == {"the-gulf-and-the-uae", "economy"}
    # Unknown terms are ignored and reported, not stored as categories.
    assert stories.unknown_terms == {"energy", "Human rights", "Podcast"}
    # "Analysis" (any letter case) marks a correspondent's analysis; it is no category.
    assert dubai.is_analysis and not dubai.is_top and not cairo.is_analysis
    assert sorted(a.title for a in stored.values() if a.is_analysis) == [
        "Dubai's property boom draws buyers from Russia and Iran",
        "Price caps will not hold the rial, and Tehran's economists know it",
        "Who may return to Aleppo is now the question that decides its rebuilding",
        "Why the second stage of the Cairo plan is the hard one",
    ]
    assert {c.slug for c in stored["Why the second stage of the Cairo plan is the hard one"]
            .categories} == {"diplomacy", "egypt", "gaza-and-the-palestinian-territories",
                             "israel"}
    assert "analysis" not in {c.slug for c in db.session.scalars(select(Category))}


def test_ingesting_again_stores_nothing_twice(categories, stories):
    again = ingest_feed(str(SAMPLE_FEED), now=NOW)
    assert (again.new, again.unchanged) == (0, 33)
    assert count() == 33


def test_a_story_is_its_id_and_its_link_only_without_one(categories, tmp_path):
    first = write(tmp_path, rss(item("Story", "https://levantwire.example/a", "id-1", "Syria")))
    assert ingest_feed(first, now=NOW).new == 1
    # Another id with the same link is another story; an entry with no id is keyed by its link,
    # and its repeat in the same feed is the same story.
    second = write(tmp_path, rss(
        item("Story, later", "https://levantwire.example/a", "id-2"),
        item("No guid", "https://levantwire.example/b"),
        item("No guid", "https://levantwire.example/b")), "second.xml")
    result = ingest_feed(second, now=NOW)
    assert (result.new, result.updated, result.unchanged) == (2, 0, 1)
    assert count() == 3
    assert articles()["Story"].guid == "id-1"
    assert articles()["No guid"].guid == "https://levantwire.example/b"


def test_a_corrected_headline_updates_the_story(categories, tmp_path):
    ingest_feed(write(tmp_path, rss(item("Tpyo", "https://levantwire.example/a", "g1"))), now=NOW)
    result = ingest_feed(write(tmp_path, rss(item("Typo fixed", "https://levantwire.example/a",
                                                  "g1")), "2.xml"), now=NOW)
    assert (result.new, result.updated) == (0, 1)
    assert list(articles()) == ["Typo fixed"]


def test_entries_without_title_or_link_are_skipped(categories, tmp_path):
    feed = rss("<item><title>No link</title></item>",
               "<item><link>https://levantwire.example/x</link></item>",
               item("Fine", "https://levantwire.example/y"))
    result = ingest_feed(write(tmp_path, feed), now=NOW)
    assert (result.new, result.skipped) == (1, 2)


def test_html_in_titles_and_summaries_becomes_plain_text(categories, tmp_path):
    feed = rss(item("Aid &amp; &lt;b&gt;fuel&lt;/b&gt;", "https://levantwire.example/z", None,
                    summary="&lt;p&gt;Hello &lt;script&gt;alert(1)&lt;/script&gt;"
                            "&lt;a href='javascript:x'&gt;there&lt;/a&gt;&lt;/p&gt;"))
    ingest_feed(write(tmp_path, feed), now=NOW)
    [story] = articles().values()
    assert story.title == "Aid & fuel"
    assert story.summary == "Hello there"


def test_dates_are_utc_and_a_missing_date_is_the_ingest_time(categories, tmp_path):
    feed = rss(item("Dated", "https://levantwire.example/d",
                    date="Tue, 24 Nov 2026 10:00:00 +0200"),
               "<item><title>Undated</title><link>https://levantwire.example/u</link></item>")
    ingest_feed(write(tmp_path, feed), now=NOW)
    stored = articles()
    assert stored["Dated"].published_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert stored["Undated"].published_at == NOW


def test_analysis_terms_are_configurable_and_never_categories(app, categories, tmp_path,
                                                              monkeypatch):
    from app.config import load_settings

    monkeypatch.setenv("NEWS_ANALYSIS_TERMS", " Commentary , News Analysis ,")
    terms = load_settings(tmp_path)["NEWS_ANALYSIS_TERMS"]
    assert terms == ("Commentary", "News Analysis")
    app.config["NEWS_ANALYSIS_TERMS"] = terms
    feed = write(tmp_path, rss(
        item("Reading the truce", "https://levantwire.example/r", "r1", "Syria", "commentary"),
        item("Reading the budget", "https://levantwire.example/b", "b1", "news-analysis"),
        item("Plain news", "https://levantwire.example/n", "n1", "Syria", "Analysis")))
    result = app.test_cli_runner().invoke(args=["news", "ingest", feed])
    assert result.exit_code == 0, result.output
    stored = articles()
    assert stored["Reading the truce"].is_analysis and stored["Reading the budget"].is_analysis
    # "Analysis" is not among the configured terms here: an unknown term, ignored.
    assert not stored["Plain news"].is_analysis
    assert "categories not known here (ignored): Analysis" in result.output
    assert [c.slug for c in stored["Reading the truce"].categories] == ["syria"]
    assert stored["Reading the budget"].categories == []
    assert not {"commentary", "news-analysis", "analysis"} & {
        c.slug for c in db.session.scalars(select(Category))}


@pytest.mark.parametrize("content, message", [
    ("this is not a feed at all", "not a readable RSS or Atom feed"),
    ("<html><body><p>Hello</p></body></html>", "not a"),
    ("<?xml version='1.0'?><rss version='2.0'>", "not a readable"),
])
def test_unreadable_feeds_are_refused(categories, tmp_path, content, message):
    with pytest.raises(FeedError, match=message):
        ingest_feed(write(tmp_path, content), now=NOW)
    assert count() == 0


def test_a_truncated_feed_keeps_what_could_be_read_and_warns(categories, tmp_path):
    feed = rss(item("Whole", "https://levantwire.example/w"))[:-len("</channel></rss>")]
    feed += "<item><title>Cut off"
    result = ingest_feed(write(tmp_path, feed), now=NOW)
    assert result.new == 1 and result.skipped == 1
    assert result.warning


def test_missing_file_and_unknown_scheme(categories, tmp_path):
    with pytest.raises(FeedError, match="could not read"):
        ingest_feed(str(tmp_path / "nope.xml"), now=NOW)
    with pytest.raises(FeedError, match="not a feed URL or file"):
        ingest_feed("ftp://levantwire.example/feed.xml", now=NOW)


@pytest.fixture
def feed_server():
    """A local HTTP server that serves the sample feed at /feed.atom, and a 404 elsewhere."""
    with serving({"/feed.atom": SAMPLE_FEED.read_bytes()}) as url:
        yield url


def test_cli_ingests_a_url_and_reports(app, categories, feed_server):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["news", "ingest", f"{feed_server}/feed.atom"])
    assert result.exit_code == 0, result.output
    assert ("33 new, 0 updated, 0 already there, 0 skipped (no title or link), 0 refused"
            in result.output)
    assert "ignored): energy, Human rights, Podcast" in result.output
    again = runner.invoke(args=["news", "ingest", f"{feed_server}/feed.atom"])
    assert "0 new, 0 updated, 33 already there" in again.output
    missing = runner.invoke(args=["news", "ingest", f"{feed_server}/nope"])
    assert missing.exit_code == 1
    assert "could not fetch" in missing.output and "404" in missing.output
    assert count() == 33
