"""The prompts in Chromium, on an article page of another site (a second loopback server, as in
test_embeds_in_browser): embed.js asks for the decision, frames an inline prompt and an
overlay; a dismissed overlay stays dismissed on the next article view; a gift made through the
inline prompt's give link is counted in its results; the thank-you page leads back to the
article with the status token, which embed.js keeps and takes out of the address."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from werkzeug.wrappers import Request, Response

from app.campaigns.services import get_campaign
from app.db import utcnow
from app.extensions import db
from app.prompts.models import Placement, Prompt, PromptCount, Segment
from app.prompts.services import prompt_results
from tests.browser.conftest import PHONE, embedding_site, page_of
from tests.support.browser import THANKS_URL, box_frame, fill_donor, pay_by_card

pytestmark = pytest.mark.browser

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Water runs out in Gaza</title>
<script src="{public_url}/embed.js" async></script>
<style>body {{ margin: 0 1rem; font: 17px/1.5 Georgia, serif; }}
[data-newsfund="prompt"] {{ min-height: 260px; }}</style>
</head><body>
<h1>Water runs out in Gaza</h1>
<p>Our correspondent reports from Deir al-Balah.</p>
<div data-newsfund="prompt"></div>
<p>The end of the story.</p>
</body></html>"""


@pytest.fixture
def newsroom(live_server) -> Iterator[str]:
    """The newsroom's site on 127.0.0.2 (any path is the article); its article's address."""
    page = Response(ARTICLE.format(public_url=live_server.url), mimetype="text/html")
    with embedding_site(live_server, Request.application(lambda request: page)) as origin:
        yield f"{origin}/2026/12/water-runs-out"


@pytest.fixture
def prompts(live_server) -> dict[str, int]:
    """A new live campaign with an inline prompt and an overlay for everyone (the only live
    prompts: those of earlier tests are switched off)."""
    slug = live_server.create_campaign(title="Twenty years of reporting")
    now = utcnow()
    with live_server.app.app_context():
        db.session.query(Prompt).update({Prompt.enabled: False})
        campaign = get_campaign(slug)
        made = {}
        for placement, headline in ((Placement.INLINE, "Stand with our reporters"),
                                    (Placement.OVERLAY, "Before you go")):
            prompt = Prompt(campaign_id=campaign.id, name=headline, placement=placement,
                            segment=Segment.EVERYONE, starts_at=now - timedelta(hours=1),
                            ends_at=now + timedelta(days=5), headline_a=headline,
                            body_a="Independent news costs money.", button_a="Give now")
            db.session.add(prompt)
            db.session.flush()
            made[placement.value] = prompt.id
        db.session.commit()
    # Each process reads the live prompts at most once a second (CAMPAIGN_PAGE_RECHECK_SECONDS):
    # the server forgets them, as it would a second later.
    live_server.app.extensions.pop("prompt_candidates", None)
    made["slug"] = slug
    return made


@pytest.fixture
def article(cookieless_browser, live_server) -> Iterator[Page]:
    with page_of(cookieless_browser.new_context(viewport=PHONE, locale="en-US")) as page:
        yield page


def counts(live_server, prompt_id: int) -> tuple[int, int, int]:
    live_server.in_flight.wait()
    with live_server.app.app_context():
        rows = db.session.query(PromptCount).filter_by(prompt_id=prompt_id).all()
        return tuple(sum(getattr(r, e) for r in rows)
                     for e in ("impressions", "dismissals", "clicks"))


@pytest.mark.postgresql_too("the results: counters per variant and day, gifts summed")
def test_a_dismissed_overlay_stays_dismissed_and_a_gift_shows_in_the_results(
        article: Page, newsroom, live_server, prompts):
    inline, overlay = prompts["inline"], prompts["overlay"]
    asked: list[str] = []
    article.on("request", lambda request: asked.append(request.url))
    article.goto(newsroom)
    inline_box = box_frame(article, f"/embed/prompts/{inline}/a")
    expect(inline_box.get_by_role("heading", name="Stand with our reporters")).to_be_visible()
    overlay_box = box_frame(article, f"/embed/prompts/{overlay}/a")
    expect(overlay_box.get_by_role("heading", name="Before you go")).to_be_visible()

    overlay_box.get_by_role("button", name="Close").click()
    expect(article.locator(f'iframe[src*="/embed/prompts/{overlay}/"]')).to_have_count(0)
    article.wait_for_function("() => (localStorage.getItem('newsfund-dismissed') || '')"
                              f".includes('{overlay}')")

    # The next article view: the inline prompt again, the overlay no more.
    article.reload()
    inline_box = box_frame(article, f"/embed/prompts/{inline}/a")
    expect(article.locator(f'iframe[src*="/embed/prompts/{overlay}/"]')).to_have_count(0)
    assert counts(live_server, overlay) == (1, 1, 0)
    # Decided in the browser, from the live prompts' rules: no decision asked of the server.
    assert sum("/embed/prompts/live" in url for url in asked) == 2
    assert not [url for url in asked if "/embed/prompts/decision" in url]

    inline_box.get_by_role("link", name="Give now").click()
    expect(article).to_have_url(re.compile(rf"/campaigns/{prompts['slug']}\?"))
    assert article.main_frame.child_frames == []
    assert article.locator('input[name="utm_content"]').input_value() == f"prompt-{inline}-a"
    fill_donor(article, {"name": "Noa Levi",
                         "email": f"noa-{uuid.uuid4().hex[:8]}@example.org"})
    article.locator("[data-submit]").click()
    pay_by_card(article, "4242 4242 4242 4242")
    expect(article).to_have_url(THANKS_URL)
    impressions, dismissals, clicks = counts(live_server, inline)
    assert (impressions, dismissals, clicks) == (2, 0, 1)
    with live_server.app.app_context():
        [a], _ = prompt_results(db.session.get(Prompt, inline))
        assert (a.gifts, a.raised) == (1, 5000)  # the $50 preselected

    # Back to the article, with the status token for embed.js to keep.
    article.get_by_role("link", name="Back to the article").click()
    expect(article).to_have_url(newsroom)  # the token taken out of the address
    article.wait_for_function("() => !!localStorage.getItem('newsfund-status')")


def test_a_reader_the_server_knows_gets_the_servers_decision(article: Page, newsroom,
                                                            live_server, prompts):
    """With a follow-box reader token (a signed-in reader's status and follows, which only the
    server can read), embed.js asks the server for the decision, and frames what it answers."""
    article.add_init_script("if (location.hostname === '127.0.0.2') "  # not in our frames
                            "localStorage.setItem('newsfund-reader', 'a-reader-token')")
    with article.expect_response(re.compile(r"/embed/prompts/decision\?.*reader=a-reader-token")
                                 ) as answer:
        article.goto(newsroom)
    assert answer.value.ok, answer.value.text()
    box = box_frame(article, f"/embed/prompts/{prompts['inline']}/a")
    expect(box.get_by_role("heading", name="Stand with our reporters")).to_be_visible()


def test_a_prompt_box_with_no_prompt_gives_its_room_back(article: Page, newsroom, live_server):
    """The article's stylesheet reserves the inline prompt's height, as README asks; when no
    prompt is for this reader, embed.js takes the room back, whatever that stylesheet says."""
    with live_server.app.app_context():
        db.session.query(Prompt).update({Prompt.enabled: False})
        db.session.commit()
    live_server.app.extensions.pop("prompt_candidates", None)
    article.goto(newsroom)
    article.wait_for_function(
        "() => document.querySelector('[data-newsfund=\"prompt\"]').offsetHeight === 0")
    assert article.locator("iframe").count() == 0
