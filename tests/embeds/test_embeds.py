"""The embeds on the newsroom's article pages (app/embeds): who may frame them and read their
JSON, embed.js, the campaign box's links, the sign-up box's form token and rate limit, the
follow box's reader token. The browser side (cross-origin frames, resizing, layout shift) is
tests/browser/test_embeds_in_browser.py."""

from __future__ import annotations

import gzip
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.embeds import services
from app.embeds.services import EmbedSigner, excerpt, parse_origins, placement
from app.extensions import db
from app.news.models import CategoryKind, Follow, NewsSubscriber, SubscriberStatus
from app.news.services import add_category
from tests.embeds.conftest import ARTICLE, BOXES, NEWSROOM, OTHER
from tests.factories import make_campaign
from tests.support.flow import hidden_value
from tests.support.news import sign_in, verified_supporter

# -- who may frame ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BOXES)
def test_boxes_may_be_framed_by_the_newsroom_only(client, newsroom, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert policy.endswith(
        "frame-ancestors https://www.levantwire.example https://levantwire.example:8443")
    assert policy.count("frame-ancestors") == 1
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("path", ["/campaigns/twenty", "/news/subscribe", "/",
                                  "/embed/campaigns/twenty/progress", "/embed.js",
                                  "/account/signin"])
def test_every_other_page_stays_unframeable(client, newsroom, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", BOXES)
def test_without_embed_origins_no_one_frames_the_boxes(client, newsroom, app, path):
    app.config["EMBED_ORIGINS"] = ""
    response = client.get(path)
    assert response.status_code == 400  # no site is the newsroom's
    assert response.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("page", [f"{OTHER}/story", "javascript:alert(1)", "",
                                  "https://www.levantwire.example.evil.example/x",
                                  f"{NEWSROOM}:8443/x", "x" * 3000])
def test_a_box_for_a_page_not_on_the_newsroom_is_refused(client, newsroom, page):
    for path in ("/embed/campaigns/twenty", "/embed/news/subscribe", "/embed/news/follow"):
        response = client.get(path, query_string={"page": page})
        assert response.status_code == 400, (path, page)


def test_origins_are_normalised_and_checked():
    assert parse_origins("HTTPS://News.Example:443/, http://a.example:8080") == (
        "https://news.example", "http://a.example:8080")
    for bad in ("news.example", "https://news.example/path", "ftp://news.example",
                "https://news.example?x=1"):
        with pytest.raises(ValueError):
            parse_origins(bad)
    place = placement("https://news.example/a?b=1#c", ("https://news.example",))
    assert (place.page, place.origin) == ("https://news.example/a?b=1", "https://news.example")


def test_the_json_is_readable_by_the_newsroom_only(client, newsroom):
    mine = client.get("/embed/campaigns/twenty/progress", headers={"Origin": NEWSROOM})
    assert mine.headers["Access-Control-Allow-Origin"] == NEWSROOM
    assert "Origin" in mine.headers["Vary"]
    assert mine.json == {"raised": 0, "goal": 1_000_000, "currency": "USD", "percent": 0,
                         "donors": 0, "gifts": 0, "days_left": 30}
    theirs = client.get("/embed/campaigns/twenty/progress", headers={"Origin": OTHER})
    assert "Access-Control-Allow-Origin" not in theirs.headers
    assert "Access-Control-Allow-Origin" not in client.get(
        "/embed/campaigns/twenty/progress").headers


# -- embed.js -----------------------------------------------------------------------------------


def test_embed_js_is_small_names_our_origin_and_is_cached(client, app):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    body = response.get_data()
    assert len(gzip.compress(body, 9)) <= 5 * 1024
    assert b'var ORIGIN = "http://donate.test";' in body
    assert b"__NEWSFUND_ORIGIN__" not in body and b'"*"' not in body
    assert "max-age=300" in response.headers["Cache-Control"]
    assert "stale-while-revalidate" in response.headers["Cache-Control"]
    again = client.get("/embed.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    app.config["PUBLIC_URL"] = "https://donate.levantwire.example"
    assert b'"https://donate.levantwire.example"' in client.get("/embed.js").get_data()


# -- the campaign box ---------------------------------------------------------------------------


def test_the_campaign_box_shows_the_appeal_and_opens_the_form_at_the_top(client, newsroom):
    html = client.get(BOXES[0]).get_data(as_text=True)
    assert "A test appeal" in html
    assert "Miriam Haddad, Founder" in html
    assert "For twenty years our correspondents have reported from Gaza and beyond." in html
    assert "$0</strong> raised of $10,000" in html
    assert 'data-parent-origin="https://www.levantwire.example"' in html
    links = re.findall(r'<a class="button[^"]*" href="([^"]+)" target="_top"', html)
    assert len(links) == 4  # three amounts and "Other amount"
    first = urlsplit(unescape(links[0]))
    assert (first.scheme, first.netloc, first.path) == ("http", "donate.test",
                                                        "/campaigns/twenty")
    assert parse_qs(first.query) == {
        "amount": ["25.00"], "utm_medium": ["embed"], "utm_source": ["embed-campaign"],
        "utm_content": ["www.levantwire.example/2026/12/gaza-water"]}
    # The donation form opened by it: the amount chosen, the box named in its hidden fields.
    page = client.get(unescape(links[0])).get_data(as_text=True)
    assert re.search(r'value="2500"[^>]*checked|checked[^>]*value="2500"', page)
    assert hidden_value(page, "utm_medium") == "embed"
    assert hidden_value(page, "utm_content") == "www.levantwire.example/2026/12/gaza-water"


def test_a_prompts_campaign_and_variant_ride_along(client, newsroom):
    html = client.get(BOXES[0] + "&utm_campaign=prompt-7&utm_term=b").get_data(as_text=True)
    query = parse_qs(urlsplit(unescape(re.search(r'href="([^"]+)" target="_top"',
                                                 html).group(1))).query)
    assert query["utm_campaign"] == ["prompt-7"] and query["utm_term"] == ["b"]


def test_an_ended_campaign_box_takes_no_gift_and_an_unknown_one_is_404(client, newsroom):
    make_campaign("over", days_left=-1, started_days_ago=40)
    html = client.get(f"/embed/campaigns/over?page={ARTICLE}").get_data(as_text=True)
    assert "not taking gifts" in html and "data-embed-amount" not in html
    assert client.get(f"/embed/campaigns/nope?page={ARTICLE}").status_code == 404


def test_the_utm_fields_name_the_box_and_the_article():
    assert services.embed_utm("campaign", "https://noa:secret@news.example:8443/a/b?x=1#y") == {
        "utm_medium": "embed", "utm_source": "embed-campaign",
        "utm_content": "news.example:8443/a/b"}
    long = services.embed_utm("campaign", "https://news.example/" + "x" * 300)["utm_content"]
    assert len(long) == 100


def test_excerpt_is_plain_text_cut_at_a_word():
    assert excerpt("# Dear *friend*, [read](https://x.example)") == "Dear friend, read"
    cut = excerpt("word " * 100, limit=22)
    assert cut == "word word word word…"


# -- the sign-up box ----------------------------------------------------------------------------


def _subscribe_form(client) -> dict:
    html = client.get(BOXES[1]).get_data(as_text=True)
    return {"form_token": hidden_value(html, "form_token"), "page": hidden_value(html, "page"),
            "email": "Noa@Example.org", "consent": "y"}


def test_the_signup_box_subscribes_with_no_cookie_at_all(app, client, newsroom, outbox):
    data = _subscribe_form(client)
    assert "Terms of Use" in client.get(BOXES[1]).get_data(as_text=True)
    cookieless = app.test_client(use_cookies=False)
    response = cookieless.post("/embed/news/subscribe", data=data,
                               headers={"Origin": "http://donate.test"})
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://www.levantwire.example https://levantwire.example:8443")
    assert "Set-Cookie" not in response.headers
    row = db.session.scalar(select(NewsSubscriber))
    assert (row.email, row.status) == ("noa@example.org", SubscriberStatus.PENDING)
    assert row.consent_source == "/embed/news/subscribe"
    [mail] = outbox()  # double opt-in, as on /news/subscribe
    assert "/news/confirm/" in mail.get_body(("plain",)).get_content()


def test_the_signup_box_refuses_a_bad_stale_or_foreign_form(client, newsroom, outbox,
                                                           monkeypatch):
    data = _subscribe_form(client)
    no_consent = client.post("/embed/news/subscribe", data={**data, "consent": ""})
    assert no_consent.status_code == 422
    assert "agree to the terms" in no_consent.get_data(as_text=True)
    forged = client.post("/embed/news/subscribe", data={**data, "form_token": "x.y.z"})
    assert forged.status_code == 400
    assert "This form expired" in forged.get_data(as_text=True)
    follow_token = EmbedSigner("test-secret-key").form_token("follow")
    assert client.post("/embed/news/subscribe",
                       data={**data, "form_token": follow_token}).status_code == 400
    assert client.post("/embed/news/subscribe", data=data,
                       headers={"Origin": OTHER}).status_code == 403
    assert client.post("/embed/news/subscribe",
                       data={**data, "page": f"{OTHER}/x"}).status_code == 400
    monkeypatch.setattr(services, "FORM_TOKEN_MAX_AGE", -1)  # every token is now too old
    stale = client.post("/embed/news/subscribe", data=data)
    assert stale.status_code == 400
    # ... and the page sent back carries a new one to send it again with.
    assert "This form expired" in stale.get_data(as_text=True)
    assert hidden_value(stale.get_data(as_text=True), "form_token")
    assert db.session.scalar(select(NewsSubscriber)) is None and outbox() == []


def test_the_signup_box_is_rate_limited(make_app, database_url):
    app = make_app(database_url, RATELIMIT_ENABLED=True, RATELIMIT_SUBSCRIBE="2 per minute",
                   EMBED_ORIGINS=NEWSROOM)
    client = app.test_client(use_cookies=False)
    data = {"page": ARTICLE, "email": "not an address", "form_token": "x"}
    codes = [client.post("/embed/news/subscribe", data=data).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    # Said in the box, which goes on telling the article its height.
    refused = client.post("/embed/news/subscribe", data=data)
    html = refused.get_data(as_text=True)
    assert "Too many requests in a short time. Try again in 1 minute." in html
    assert f'data-parent-origin="{NEWSROOM}"' in html and "embed-frame.js" in html
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Content-Security-Policy"].endswith(f"frame-ancestors {NEWSROOM}")


# -- the follow box -----------------------------------------------------------------------------


def test_the_follow_box_asks_to_sign_in_at_the_top_and_comes_back(app, client, newsroom):
    html = client.get(BOXES[2]).get_data(as_text=True)
    assert "Sign in to personalize" in html
    link = unescape(re.search(r'href="([^"]+)" target="_top" data-embed-signin', html).group(1))
    assert link.startswith("http://donate.test/embed/news/follow/connect?page=")
    link = link.removeprefix("http://donate.test")
    # Not signed in: the sign-in page, then back here.
    assert "/account/signin?next=" in client.get(link).headers["Location"]
    reader = verified_supporter()
    sign_in(client, reader)
    with app.app_context():  # a fresh g: Flask-Login keeps the anonymous visitor in the test's
        back = client.get(link)
    assert back.status_code == 303, back.headers.get("Location")
    page, token = back.headers["Location"].split("#newsfund-reader=")
    assert page == ARTICLE
    assert EmbedSigner("test-secret-key").reader(token) == (reader.id, reader.session_version)
    # Only back to the newsroom's own pages.
    with app.app_context():
        assert client.get("/embed/news/follow/connect",
                          query_string={"page": f"{OTHER}/x"}).status_code == 400
    assert app.test_client().get("/embed/news/follow/connect",
                                 query_string={"page": f"{OTHER}/x"}).status_code == 400


def test_the_follow_box_follows_with_the_reader_token_and_no_cookie(app, client, newsroom):
    syria, _ = add_category("Syria", CategoryKind.REGION)
    reader = verified_supporter()
    db.session.commit()
    token = EmbedSigner("test-secret-key").reader_token(reader.id, reader.session_version)
    cookieless = app.test_client(use_cookies=False)
    html = cookieless.get(f"{BOXES[2]}&reader={token}").get_data(as_text=True)
    assert "Syria" in html and 'aria-pressed="false"' in html
    data = {"form_token": hidden_value(html, "form_token"), "reader": token, "page": ARTICLE,
            "follow": "1"}
    response = cookieless.post("/embed/news/follow/syria", data=data)
    assert response.status_code == 200
    assert "You follow Syria." in response.get_data(as_text=True)
    assert db.session.get(Follow, (reader.id, syria.id)) is not None
    # A token that is not the reader's any more (signed out everywhere) signs nobody in.
    reader.session_version += 1
    db.session.commit()
    assert cookieless.post("/embed/news/follow/syria",
                           data={**data, "follow": "0"}).status_code == 403
    assert db.session.get(Follow, (reader.id, syria.id)) is not None
    assert "Sign in to personalize" in cookieless.get(
        f"{BOXES[2]}&reader={token}").get_data(as_text=True)


# -- caching ------------------------------------------------------------------------------------


def test_boxes_for_everyone_are_cacheable_and_revalidated(client, newsroom, monkeypatch):
    monkeypatch.setattr(services, "clock", lambda: 1_800_000_000)  # no new five minutes
    for path, max_age in ((BOXES[0], 10), (BOXES[1], 300), (BOXES[2], 300),
                          ("/embed/campaigns/twenty/progress", 10)):
        response = client.get(path)
        control = response.headers["Cache-Control"]
        assert control.startswith(f"public, max-age={max_age}, stale-while-revalidate="), path
        again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304, path
    # A signed-in reader's follow box is theirs alone.
    reader = verified_supporter()
    token = EmbedSigner("test-secret-key").reader_token(reader.id, reader.session_version)
    assert client.get(f"{BOXES[2]}&reader={token}").headers["Cache-Control"] == (
        "private, no-store")
    assert "Cache-Control" not in client.get("/embed/campaigns/twenty").headers  # a 400


def test_the_signup_box_keeps_its_etag_for_its_five_minutes(client, newsroom, monkeypatch):
    """The sign-up box is the same bytes all through its five minutes (its form token is
    dated to their start), so revalidating it a second or four minutes later gets a 304; the
    next five minutes bring a new token, still valid for the form."""
    path = BOXES[1]
    start = 1_800_000_000 - 1_800_000_000 % services.FORM_TOKEN_STEP
    monkeypatch.setattr(services, "clock", lambda: start + 1)
    first = client.get(path)
    for later in (2, services.FORM_TOKEN_STEP - 1):
        monkeypatch.setattr(services, "clock", lambda later=later: start + later)
        assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}
                          ).status_code == 304
    monkeypatch.setattr(services, "clock", lambda: start + services.FORM_TOKEN_STEP)
    after = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200
    token = hidden_value(after.get_data(as_text=True), "form_token")
    assert token != hidden_value(first.get_data(as_text=True), "form_token")
    signer = EmbedSigner("test-secret-key")
    assert signer.form_token_valid(token, "subscribe")
    # The first five minutes' token lasts FORM_TOKEN_MAX_AGE from their start.
    first_token = hidden_value(first.get_data(as_text=True), "form_token")
    monkeypatch.setattr(services, "clock", lambda: start + services.FORM_TOKEN_MAX_AGE)
    assert signer.form_token_valid(first_token, "subscribe")
    monkeypatch.setattr(services, "clock", lambda: start + services.FORM_TOKEN_MAX_AGE
                        + services.FORM_TOKEN_STEP)
    assert not signer.form_token_valid(first_token, "subscribe")


def test_the_nginx_site_caches_the_boxes_for_everyone_and_no_readers_own():
    """deploy/nginx-newsfund.conf keeps what the app marks cacheable for every article view
    (the benchmark's figures: bench/README.md), and passes the rest to the app."""
    site = (Path(__file__).parents[2] / "deploy" / "nginx-newsfund.conf").read_text()
    pattern = re.search(r"location ~ (\^/embed\S+) \{\s*proxy_pass http://newsfund_web;\s*"
                        r"proxy_cache newsfund_embeds;", site).group(1)
    cached = re.compile(pattern)
    for path in ("/embed.js", "/embed/campaigns/twenty", "/embed/campaigns/twenty/progress",
                 "/embed/news/subscribe", "/embed/prompts/live", "/embed/prompts/12/a",
                 "/embed/prompts/12/b"):
        assert cached.match(path), path
    for path in ("/embed/news/follow", "/embed/news/follow/connect", "/embed/news/follow/x",
                 "/embed/prompts/decision", "/embed/prompts/lively", "/embed/prompts/12/a/give",
                 "/embed/prompts/12/a/impressions", "/embed/prompts/status",
                 "/campaigns/twenty", "/embed.jsx"):
        assert not cached.match(path), path
