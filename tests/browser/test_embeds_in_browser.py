"""The embeds in Chromium, on an article page of another site: a second server on another
loopback address (127.0.0.2), whose origin is the live server's EMBED_ORIGINS. The appeal shows
the live total and opens the donation form at the top level with the box's utm fields; the
sign-up box subscribes in a browser that blocks third-party cookies; each frame's height
follows its steps; the article does not jump (layout shift measured in the article page)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from app.accounts.models import Supporter
from app.campaigns.models import Campaign
from app.extensions import db
from app.news.demo import seed_categories
from app.news.models import Category, Follow, NewsSubscriber, SubscriberStatus
from tests.browser.conftest import PHONE, embedding_site, page_of
from tests.factories import paid_gift
from tests.support.browser import box_frame, sign_in_reader

pytestmark = pytest.mark.browser


def readme_css() -> str:
    """The rules README gives the newsroom for its stylesheet: each box's height reserved
    before any script runs (embed.js, loaded async, may run after the first paint)."""
    return (Path(__file__).parents[2] / "README.md").read_text().split(
        "```css\n", 1)[1].split("```", 1)[0]


#: The newsroom's article, as its CMS would write it: embed.js in the head, placeholders in the
#: text. A PerformanceObserver keeps every layout shift of the article (not those right after
#: the reader's own input, as Chromium's CLS does).
ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Water runs out in Gaza</title>
<script src="{public_url}/embed.js" async></script>
<script>
window.shifts = [];
new PerformanceObserver(function (list) {{
  list.getEntries().forEach(function (e) {{ if (!e.hadRecentInput) window.shifts.push(e.value); }});
}}).observe({{type: "layout-shift", buffered: true}});
</script>
<style>body {{ margin: 0 1rem; font: 17px/1.5 Georgia, serif; }}
{reserve}</style>
</head><body>
<h1>Water runs out in Gaza</h1>
<p>Our correspondent reports from Deir al-Balah, where the last desalination plant stopped.</p>
<div data-newsfund="campaign:{slug}"></div>
<p>The story goes on under the appeal, and must not move when the boxes arrive.</p>
<div data-newsfund="subscribe"></div>
<p>More of the story.</p>
<div data-newsfund="follow"></div>
<p>The end of the story.</p>
</body></html>"""


class Newsroom:
    """The newsroom's site: any path is the article, for the campaign ``slug``; with the
    heights README asks the newsroom's stylesheet to reserve (``reserve``), or without."""

    def __init__(self, public_url: str):
        self.public_url = public_url
        self.slug = ""
        self.reserve = True

    @Request.application
    def __call__(self, request):
        return Response(ARTICLE.format(public_url=self.public_url, slug=self.slug,
                                       reserve=readme_css() if self.reserve else ""),
                        mimetype="text/html")


@pytest.fixture
def newsroom(live_server) -> Iterator[Newsroom]:
    site = Newsroom(live_server.url)
    with embedding_site(live_server, site) as origin:
        site.origin = origin
        site.article = f"{origin}/2026/12/water-runs-out"
        yield site


@pytest.fixture
def article(cookieless_browser, newsroom, live_server) -> Iterator[Page]:
    """A phone-sized page in the cookie-blocking browser, not yet on the article."""
    with live_server.app.app_context():
        slug = live_server.create_campaign()
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        paid_gift(campaign, f"donor-{uuid.uuid4().hex[:8]}@example.org", amount=5000)
    newsroom.slug = slug
    with page_of(cookieless_browser.new_context(viewport=PHONE, locale="en-US")) as page:
        yield page


def settled_height(page: Page, path: str) -> int:
    """Once the article's frame for ``path`` is as tall as the box inside it says: that
    height (the frame's content, never cut off)."""
    frame = box_frame(page, path)
    height = frame.evaluate("Math.ceil(document.querySelector('[data-embed-box]')"
                            ".getBoundingClientRect().bottom)")
    try:
        page.wait_for_function(
            "([path, h]) => document.querySelector(`iframe[src*='${path}']`).style.height"
            " === h + 'px'", arg=[path, height])
    except PlaywrightTimeoutError:
        shown = page.evaluate("path => document.querySelector(`iframe[src*='${path}']`)"
                              ".style.height", path)
        raise AssertionError(f"the frame of {path} stayed {shown} tall, its box "
                             f"{height}px") from None
    return height


@pytest.mark.postgresql_too("the appeal's live total: a sum")
def test_the_appeal_shows_the_live_total_and_gives_at_the_top_level(article: Page, newsroom,
                                                                    live_server):
    article.goto(newsroom.article)
    for path in ("/embed/campaigns/", "/embed/news/subscribe", "/embed/news/follow"):
        assert settled_height(article, path) > 100
    appeal = box_frame(article, "/embed/campaigns/")
    expect(appeal.locator(".raised strong")).to_have_text("$50")
    assert appeal.url.startswith(f"{live_server.url}/embed/campaigns/{newsroom.slug}?page=")
    article.wait_for_timeout(300)  # any late shift would be observed by now
    assert sum(article.evaluate("window.shifts")) < 0.01

    appeal.get_by_role("link", name="$25").click()
    expect(article).to_have_url(re.compile(
        rf"^{re.escape(live_server.url)}/campaigns/{newsroom.slug}\?amount=25\.00&"))
    assert article.main_frame.child_frames == []  # the form is the page, not in a frame
    expect(article.locator('input[name="amount_choice"][value="2500"]')).to_be_checked()
    assert article.locator('input[name="utm_medium"]').input_value() == "embed"
    assert article.locator('input[name="utm_source"]').input_value() == "embed-campaign"
    assert article.locator('input[name="utm_content"]').input_value() == (
        newsroom.article.removeprefix("http://"))


def test_the_signup_box_subscribes_with_third_party_cookies_blocked(article: Page, newsroom,
                                                                    live_server):
    email = f"reader-{uuid.uuid4().hex[:10]}@example.org"
    # A cookie of ours that any site's frame could carry (SameSite=None): our own pages see
    # it, the box on the newsroom's article does not. Third-party cookies are blocked.
    article.context.add_cookies([{"name": "probe", "value": "1", "domain": "127.0.0.1",
                                  "path": "/", "sameSite": "None", "secure": True}])
    article.goto(live_server.url + "/healthz")
    assert article.evaluate("document.cookie") == "probe=1"
    article.goto(newsroom.article)
    path = "/embed/news/subscribe"
    first = settled_height(article, path)
    signup = box_frame(article, path)
    assert signup.evaluate("document.cookie") == ""

    signup.get_by_label("Email address").fill(email)
    signup.get_by_role("button", name="Subscribe").click()
    signup = box_frame(article, path)
    expect(signup.get_by_role("alert")).to_contain_text("agree to the terms")
    with_error = settled_height(article, path)
    assert with_error > first  # the error message is not cut off

    signup.get_by_label(re.compile("I agree")).check()
    signup.get_by_role("button", name="Subscribe").click()
    signup = box_frame(article, path)
    expect(signup.get_by_role("heading", name="Check your inbox")).to_be_visible()
    assert settled_height(article, path) < with_error  # the confirmation, its own height

    live_server.in_flight.wait()
    with live_server.app.app_context():
        row = db.session.scalar(select(NewsSubscriber).where(NewsSubscriber.email == email))
        assert row.status is SubscriberStatus.PENDING
        assert row.consent_source == "/embed/news/subscribe"
    mails = [message_from_bytes(p.read_bytes(), policy=policy.default)
             for p in live_server.outbox.glob("*.eml")]
    assert [m["Subject"] for m in mails if m["To"] == email] == [
        "Confirm your daily news email"]


def test_embed_js_reserves_the_heights_the_page_did_not(article: Page, newsroom):
    """Without the newsroom's rules, embed.js reserves each box's height itself (the same
    heights), and a box's first step fits in it, so a frame saying its height moves nothing."""
    newsroom.reserve = False
    article.goto(newsroom.article)
    for path in ("/embed/campaigns/", "/embed/news/subscribe", "/embed/news/follow"):
        settled_height(article, path)
    reserved = dict(re.findall(r'\[data-newsfund[\^]?="([a-z]+):?"\] \{ min-height: (\d+)px',
                               readme_css()))
    heights = article.evaluate("""() => Array.from(document.querySelectorAll("[data-newsfund]"),
        box => [box.getAttribute("data-newsfund").split(":")[0], box.style.minHeight,
                box.offsetHeight, box.querySelector("iframe").offsetHeight])""")
    assert [h[0] for h in heights] == ["campaign", "subscribe", "follow"]
    for kind, min_height, box, frame in heights:
        assert min_height == f"{reserved[kind]}px"
        assert box == int(reserved[kind]) >= frame, (kind, box, frame)


def test_the_follow_box_signs_in_at_the_top_level_and_comes_back(article: Page, newsroom,
                                                                 live_server):
    """Our sign-in cookie is not sent to a frame on another site: "Sign in to personalize"
    opens our site at the top level, where it is, and comes back to the article with a reader
    token that embed.js keeps in the article site's storage."""
    with live_server.app.app_context():
        seed_categories()
        db.session.commit()
    email = f"reader-{uuid.uuid4().hex[:10]}@example.org"
    # On our site, as a reader who signed in there.
    sign_in_reader(article.context, live_server, email)
    article.goto(newsroom.article)
    path = "/embed/news/follow"
    settled_height(article, path)
    follow = box_frame(article, path)
    follow.get_by_role("link", name="Sign in to personalize").click()

    expect(article).to_have_url(newsroom.article)  # back, the token taken out of the address
    assert article.evaluate("localStorage.getItem('newsfund-reader')")
    follow = box_frame(article, path)
    syria = follow.get_by_role("button", name=re.compile(r"^Syria\b"))
    expect(syria).to_have_attribute("aria-pressed", "false")
    before = settled_height(article, path)
    assert before > 320  # the categories: taller than the sign-in step, and not cut off
    # The box in view first, its layout done: Chromium aimed a click that had to scroll the
    # article to a button in another site's frame at where the button had been, now and then
    # (1 run in 10-14: no request sent), and Playwright cannot scroll to the button itself
    # (a frame of another site outside the window gets no animation frames to prove it
    # still). The click is then the reader's: on a button in view.
    article.locator(f"iframe[src*='{path}']").scroll_into_view_if_needed()
    article.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                     "requestAnimationFrame(r)))")

    # Its answer awaited as such (a slow one under load is not a refused one), and said.
    with article.expect_response(lambda r: r.url.endswith("/embed/news/follow/syria")) as sent:
        syria.click()
    assert sent.value.status == 200, sent.value.text()[:2000]
    follow = box_frame(article, path)
    expect(follow.get_by_role("status")).to_have_text("You follow Syria.")
    expect(follow.get_by_role("button", name=re.compile(r"^Syria\b"))).to_have_attribute(
        "aria-pressed", "true")
    settled_height(article, path)
    with live_server.app.app_context():
        reader = db.session.scalar(select(Supporter).where(Supporter.email == email))
        syria_id = db.session.scalar(select(Category.id).where(Category.slug == "syria"))
        assert db.session.get(Follow, (reader.id, syria_id)) is not None


def test_embed_js_takes_heights_only_from_its_own_frames_on_our_origin(article: Page,
                                                                      newsroom):
    """A message from the article itself, from a frame of ours that embed.js did not insert,
    or from one of its frames once on another origin, resizes nothing."""
    article.goto(newsroom.article)
    path = "/embed/news/subscribe"
    height = settled_height(article, path)
    article.evaluate("""url => {
        window.postMessage({newsfund: "height", height: 7}, "*");  // the article's origin
        const stranger = document.createElement("iframe");  // ours, but not embed.js's
        stranger.src = url;
        stranger.id = "stranger";
        document.body.appendChild(stranger);
    }""", f"{newsroom.public_url}{path}?page={newsroom.article}")
    stranger = article.locator("#stranger").element_handle().content_frame()
    stranger.wait_for_load_state()
    stranger.evaluate("""origin => parent.postMessage({newsfund: "height", height: 9}, origin)""",
                      newsroom.origin)
    # One of embed.js's own frames, sent to a page of another origin (the article's).
    follow = article.locator('[data-newsfund="follow"] iframe')
    follow.evaluate("(frame, url) => { frame.src = url; }", f"{newsroom.origin}/elsewhere")
    elsewhere = follow.element_handle().content_frame()
    elsewhere.wait_for_url(f"{newsroom.origin}/elsewhere")
    elsewhere.evaluate("""() => parent.postMessage({newsfund: "height", height: 11}, "*")""")
    article.wait_for_timeout(200)
    heights = article.evaluate("""() => Array.from(
        document.querySelectorAll("[data-newsfund] iframe"), f => f.style.height)""")
    assert f"{height}px" in heights
    assert not {"7px", "9px", "11px"} & set(heights), heights
