"""The daily email, extended: the correspondents' analysis (stories the feed marks "analysis")
in a section of its own for subscribers whose membership level has the ``daily_digest_plus``
perk (Sustainers and Patrons by default); a one-line offer for everyone else; the perk checked
once per batch, not per subscriber."""

from __future__ import annotations

from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import delete, event, select, update

from app.extensions import db
from app.news.models import Article, Category, Digest, DigestSend, Follow
from tests.factories import make_campaign, paid_gift
from tests.support.news import (
    DIGEST_NOW,
    Recorder,
    body,
    confirmed_subscriber,
    digest,
    verified_supporter,
)

# Gifts count for a year: these were made a month before the day's email.
GIFT_DAY = DIGEST_NOW - timedelta(days=30)
# The sample feed's analysis of the day, newest first (Egypt and Gaza, Iran, Syria), and one
# from two days before, outside the day's window.
ANALYSIS = [
    "Why the second stage of the Cairo plan is the hard one",
    "Price caps will not hold the rial, and Tehran's economists know it",
    "Who may return to Aleppo is now the question that decides its rebuilding",
]
OLDER_ANALYSIS = "Dubai's property boom draws buyers from Russia and Iran"
HEADING_TEXT = "ANALYSIS FROM OUR CORRESPONDENTS"
HEADING_HTML = "Analysis from our correspondents"
OFFER = "Sustainers also get our correspondents' analysis in this email"


@pytest.fixture
def campaign(app):
    return make_campaign("twenty")


def reader(email: str, *, gave: int = 0, follows: tuple[str, ...] = ("syria",),
           when=GIFT_DAY, campaign=None):
    """A subscribed supporter who gave ``gave`` (minor units) once, ``when``."""
    supporter = verified_supporter(email)
    if gave:
        paid_gift(campaign, email, amount=gave, when=when)
    for slug in follows:
        category = db.session.scalar(select(Category).where(Category.slug == slug))
        db.session.add(Follow(supporter_id=supporter.id, category_id=category.id))
    confirmed_subscriber(email, supporter)
    return supporter


def emails(transport) -> dict[str, tuple[str, str]]:
    return {m["To"]: (body(m), body(m, "html")) for m in transport.messages()}


def test_a_sustainer_gets_the_days_analysis_a_friend_and_a_non_donor_do_not(app, stories,
                                                                            campaign):
    reader("sustainer@example.org", gave=12000, campaign=campaign)  # $120 a year
    reader("patron@example.org", gave=100000, campaign=campaign, follows=())
    reader("friend@example.org", gave=11999, campaign=campaign)  # a cent short
    reader("nondonor@example.org")
    confirmed_subscriber("anonymous@example.org")  # no account at all
    transport = Recorder()
    report = digest(transport=transport)
    assert report.sent == 5
    sent = emails(transport)

    text, html = sent["sustainer@example.org"]
    # The section, after the news the reader follows (Syria), with every analysis of the day,
    # also those of regions they do not follow, newest first; each once.
    assert "From the regions and topics you follow: Syria." in text
    news, section = text.split(HEADING_TEXT)
    assert "Displaced families in north-west Syria" in news
    assert [section.index(title) for title in ANALYSIS] == sorted(
        section.index(title) for title in ANALYSIS)
    assert all(text.count(title) == 1 for title in ANALYSIS)
    assert "By Nadia Khoury · Diplomacy · Egypt" in section
    assert OLDER_ANALYSIS not in text and OFFER not in text
    assert HEADING_HTML in html and all(escape(title) in html for title in ANALYSIS)
    assert 'href="https://levantwire.example/analysis/2026/11/24/why-the-second-stage' in html

    # Perks accumulate: a Patron has it too, even following nothing (top stories, then this).
    text, html = sent["patron@example.org"]
    assert "The day's top stories." in text and HEADING_TEXT in text
    assert all(title in text for title in ANALYSIS)

    # Everyone else: no section and none of the analysis, not even the Syria one they follow;
    # a line saying what Sustainers get, linking to giving.
    give = app.config["PUBLIC_URL"].rstrip("/") + "/"
    for email in ("friend@example.org", "nondonor@example.org", "anonymous@example.org"):
        text, html = sent[email]
        assert HEADING_TEXT not in text and HEADING_HTML not in html, email
        assert not any(title in text or escape(title) in html for title in ANALYSIS), email
        assert f"{OFFER}\n(3 pieces today). Become a Sustainer:\n{give}\n" in text
        assert f'{OFFER} (3 pieces today). <a href="{give}" style="color:#9b2c1f">' \
            'Become a Sustainer</a>' in html
    assert "Displaced families in north-west Syria" in sent["friend@example.org"][0]

    # The stories counted for each send include the section's.
    counts = {s.subscriber_id: s.articles for s in db.session.scalars(select(DigestSend))}
    assert sorted(counts.values()) == [3, 3, 3 + 3, 8, 8 + 3]  # Syria: 3 news stories


def test_the_level_is_that_of_the_days_email(app, stories, campaign):
    # $120 given 366 days before the email no longer counts; a monthly plan would (the level
    # rules are membership's, tested there).
    reader("lapsed@example.org", gave=12000, campaign=campaign,
           when=DIGEST_NOW - timedelta(days=366))
    transport = Recorder()
    digest(transport=transport)
    text, _ = emails(transport)["lapsed@example.org"]
    assert HEADING_TEXT not in text and OFFER in text


def test_a_day_without_analysis_has_no_section_and_no_offer(app, stories, campaign):
    db.session.execute(update(Article).values(is_analysis=False))
    db.session.commit()
    reader("sustainer@example.org", gave=12000, campaign=campaign)
    reader("friend@example.org", gave=2500, campaign=campaign)
    transport = Recorder()
    digest(transport=transport)
    for text, html in emails(transport).values():
        assert HEADING_TEXT not in text and "Sustainers also get" not in text
        assert HEADING_HTML not in html


def test_when_no_level_offers_the_perk_analysis_is_news_like_any_other(app, stories, campaign):
    app.config["MEMBERSHIP_LEVELS"] = [
        level if level["key"] != "sustainer" else {**level, "perks": ["briefings"]}
        for level in app.config["MEMBERSHIP_LEVELS"]]
    reader("sustainer@example.org", gave=12000, campaign=campaign, follows=("iran",))
    transport = Recorder()
    digest(transport=transport)
    text, html = emails(transport)["sustainer@example.org"]
    assert HEADING_TEXT not in text and "Sustainers also get" not in text
    assert "Price caps will not hold the rial" in text  # Iran: in the news they follow


def test_contents_are_rendered_once_per_follows_and_perk(app, stories, campaign):
    for i in range(3):
        reader(f"sustainer{i}@example.org", gave=12000, campaign=campaign)
        reader(f"friend{i}@example.org", gave=2500, campaign=campaign)
    transport = Recorder()
    report = digest(transport=transport, batch_size=4)
    assert report.sent == 6 and report.editions == 2  # Syria with the section, and without


def test_membership_is_asked_once_a_batch_not_once_a_subscriber(app, stories, campaign):
    """The same statements for a batch of 2 Sustainers as for a batch of 8."""
    engine = db.session.get_bind().engine
    counted = []

    def statements_to_send(first: int, last: int) -> int:
        for i in range(first, last):
            reader(f"sustainer{i}@example.org", gave=12000, campaign=campaign)
        db.session.execute(delete(DigestSend))
        db.session.execute(delete(Digest))
        db.session.commit()
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731 - the statement
        event.listen(engine, "before_cursor_execute", listener)
        try:
            report = digest(transport=Recorder(), batch_size=50)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert report.sent == last and report.editions == 1
        counted.append(statements)
        return len(statements)

    assert statements_to_send(0, 2) == statements_to_send(2, 8), counted
