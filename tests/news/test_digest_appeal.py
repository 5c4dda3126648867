"""The daily email's campaign appeal (issue 13): carried when staff switch it on for a live
campaign, with the give link's attribution, and left out for subscribers who gave to it."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from app.extensions import db
from app.prompts.models import EmailAppeal
from tests.factories import make_campaign, paid_gift
from tests.support.news import DIGEST_NOW, body, confirmed_subscriber

TITLE = "Twenty years of reporting"


@pytest.fixture
def campaign(app, stories):
    """Live now (gifts can be made) until :func:`live_at_the_digest` moves its dates."""
    campaign = make_campaign("twenty-years", title=TITLE)
    campaign.summary = "Twenty years of independent reporting from the region."
    db.session.commit()
    return campaign


def live_at_the_digest(campaign) -> None:
    """The sample feed's day (DIGEST_NOW) falls within the campaign, whatever today is."""
    campaign.starts_at, campaign.ends_at = DIGEST_NOW - timedelta(days=5), \
        DIGEST_NOW + timedelta(days=20)
    db.session.commit()


def send(app, outbox) -> dict[str, tuple[str, str]]:
    result = app.test_cli_runner().invoke(
        args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
    assert result.exit_code == 0, result.output
    return {m["To"]: (body(m), body(m, "html")) for m in outbox()}


def test_the_appeal_goes_to_those_who_have_not_given_to_the_campaign(app, outbox, campaign):
    db.session.add(EmailAppeal(campaign_id=campaign.id, switched_on_at=DIGEST_NOW))
    db.session.commit()
    for email in ("reader@example.org", "giver@example.org", "other-giver@example.org"):
        confirmed_subscriber(email)
    paid_gift(campaign, "giver@example.org")
    paid_gift(make_campaign("other-appeal"), "other-giver@example.org")  # another campaign
    live_at_the_digest(campaign)
    mails = send(app, outbox)
    text, html = mails["reader@example.org"]
    assert TITLE.upper() in text and "Twenty years of independent reporting" in text
    assert "— Miriam Haddad, Founder" in text
    link = next(line for line in text.splitlines() if line.startswith("Give: "))[6:]
    url = urlsplit(link)
    assert (url.netloc, url.path) == ("donate.test", "/campaigns/twenty-years")
    assert parse_qs(url.query) == {"utm_source": ["daily-email"], "utm_medium": ["email"],
                                   "utm_content": ["email-appeal"],
                                   "utm_campaign": ["twenty-years"]}
    assert f"Give to {TITLE}" in html and link.replace("&", "&amp;") in html
    assert TITLE.upper() in mails["other-giver@example.org"][0]
    giver_text, giver_html = mails["giver@example.org"]
    assert TITLE.upper() not in giver_text and TITLE not in giver_html


@pytest.mark.parametrize("state", ["off", "ended", "paused"])
def test_no_appeal_unless_switched_on_for_a_live_campaign(app, outbox, campaign, state):
    if state != "off":
        db.session.add(EmailAppeal(campaign_id=campaign.id, switched_on_at=DIGEST_NOW))
    live_at_the_digest(campaign)
    if state == "ended":
        campaign.ends_at = DIGEST_NOW - timedelta(hours=1)
        campaign.starts_at = DIGEST_NOW - timedelta(days=30)
    elif state == "paused":
        campaign.paused_at = DIGEST_NOW - timedelta(hours=1)
    db.session.commit()
    confirmed_subscriber("reader@example.org")
    text, html = send(app, outbox)["reader@example.org"]
    assert TITLE.upper() not in text and "Give to" not in html
