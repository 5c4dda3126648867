"""The live prompts' rules and the decision embed.js asks for, a prompt's box, its counters
and its give link (on both databases)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.prompts.models import Placement, PromptCount, Segment
from tests.prompts.conftest import ARTICLE, NEWSROOM, add_prompt

pytestmark = pytest.mark.usefixtures("newsroom")


def decision_response(client, headers=None, **params):
    return client.get("/embed/prompts/decision", query_string={"page": ARTICLE, **params},
                      headers=headers or {})


def decision(client, headers=None, **params):
    response = decision_response(client, headers, **params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def counts(prompt) -> dict[str, tuple[int, int, int]]:
    return {r.variant: (r.impressions, r.dismissals, r.clicks) for r in db.session.scalars(
        select(PromptCount).where(PromptCount.prompt_id == prompt.id))}


def test_the_live_rules_are_the_same_for_every_reader_and_read_by_the_newsroom_only(
        app, client, campaign, prompt):
    weekly = add_prompt(campaign, name="Inline, engaged readers", placement=Placement.INLINE,
                        segment=Segment.ENGAGED, min_views=3, priority=5, start_at_view=2,
                        every_nth_view=2, max_times=4, reset="weekly", headline_b="")
    add_prompt(campaign, name="Switched off", enabled=False)
    add_prompt(campaign, name="Over", ends_at=utcnow() - timedelta(minutes=1))
    response = client.get("/embed/prompts/live", headers={"Origin": NEWSROOM})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == NEWSROOM
    assert response.headers["Cache-Control"] == "public, max-age=30, stale-while-revalidate=30"
    assert "Set-Cookie" not in response.headers
    assert response.get_json() == {"prompts": [
        {"id": weekly.id, "placement": "inline", "segment": "engaged", "priority": 5,
         "variants": ["a"], "min_views": 3, "category_id": None, "start_at_view": 2,
         "every_nth_view": 2, "max_times": 4, "reset": "weekly", "height": 260},
        {"id": prompt.id, "placement": "overlay", "segment": "everyone", "priority": 100,
         "variants": ["a", "b"], "min_views": None, "category_id": None, "start_at_view": 1,
         "every_nth_view": 1, "max_times": None, "reset": "never", "height": 320}]}
    again = client.get("/embed/prompts/live",
                       headers={"Origin": NEWSROOM, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    other = client.get("/embed/prompts/live", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.get_data() == response.get_data()  # nothing in it is the reader's


def test_the_decision_names_the_box_to_frame_and_is_read_by_the_newsroom_only(client, prompt):
    response = decision(client, headers={"Origin": NEWSROOM}, rid="reader-1")
    assert response.headers["Access-Control-Allow-Origin"] == NEWSROOM
    assert response.headers["Cache-Control"] == (
        "private, max-age=30, stale-while-revalidate=30")
    again = decision_response(client, {"Origin": NEWSROOM,
                                       "If-None-Match": response.headers["ETag"]},
                              rid="reader-1")
    assert again.status_code == 304
    assert again.headers["Access-Control-Allow-Origin"] == NEWSROOM
    body = response.get_json()
    assert body["track"] is True
    [shown] = body["prompts"]
    assert (shown["id"], shown["placement"]) == (prompt.id, "overlay")
    assert shown["variant"] in ("a", "b") and shown["period"] == "all"
    url = urlsplit(shown["url"])
    assert f"{url.scheme}://{url.netloc}" == "http://donate.test"
    assert url.path == f"/embed/prompts/{prompt.id}/{shown['variant']}"
    assert parse_qs(url.query) == {"page": [ARTICLE], "track": ["1"]}
    # The same reader, the same variant.
    assert decision(client, rid="reader-1").get_json()["prompts"][0]["variant"] == \
        shown["variant"]
    other = decision(client, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert client.get("/embed/prompts/decision",
                      query_string={"page": "https://evil.example/x"}).status_code == 400


@pytest.mark.parametrize("header", ["Sec-GPC", "DNT"])
def test_global_privacy_control_and_do_not_track_no_id_and_no_counting(client, prompt, header):
    # Many readers ask not to be tracked: none is split, all see A.
    variants = {decision(client, headers={header: "1"}, rid=f"r{n}").get_json()["prompts"][0][
        "variant"] for n in range(12)}
    assert variants == {"a"}
    body = decision(client, headers={header: "1"}).get_json()
    assert body["track"] is False
    assert "track=0" in body["prompts"][0]["url"]
    for event in ("impressions", "dismissals"):
        assert client.post(f"/embed/prompts/{prompt.id}/a/{event}",
                           headers={header: "1"}).status_code == 204
    give = client.get(f"/embed/prompts/{prompt.id}/a/give",
                      query_string={"page": ARTICLE, "track": "1"}, headers={header: "1"})
    assert give.status_code == 303
    assert counts(prompt) == {}


def test_the_readers_facts_from_the_parameters(client, campaign, prompt):
    bar = add_prompt(campaign, name="Bar", placement=Placement.BOTTOM_BAR,
                     segment=Segment.FROM_EMAIL, start_at_view=3, headline_b="")
    shown = {p["id"] for p in decision(client, views=3, email="1").get_json()["prompts"]}
    assert shown == {prompt.id, bar.id}
    assert {p["id"] for p in decision(client, views=2, email="1").get_json()["prompts"]} == {
        prompt.id}
    assert decision(client, views=3, email="1", dismissed=f"{prompt.id},{bar.id}").get_json()[
        "prompts"] == []
    assert decision(client, gave_until=str(2**33)).get_json()["prompts"] == []
    # Malformed values count as absent.
    body = decision(client, views="many", dismissed="x,,-1", seen="1.2,a.b.c",
                    gave_until="soon").get_json()
    assert [p["id"] for p in body["prompts"]] == [prompt.id]


def test_prompts_of_campaigns_not_live_or_switched_off_are_not_shown(client, campaign, prompt):
    prompt.enabled = False
    db.session.commit()
    assert decision(client).get_json()["prompts"] == []
    prompt.enabled = True
    campaign.published = False
    db.session.commit()
    assert decision(client).get_json()["prompts"] == []


def test_the_box_in_its_variants_words_framed_by_the_newsroom_only(client, prompt):
    page = client.get(f"/embed/prompts/{prompt.id}/b", query_string={"page": ARTICLE,
                                                                       "track": "1"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Keep this newsroom free" in html and "Stand with our reporters" not in html
    assert f"frame-ancestors {NEWSROOM}" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in page.headers
    assert "public" in page.headers["Cache-Control"] and page.headers["ETag"]
    again = client.get(f"/embed/prompts/{prompt.id}/b",
                       query_string={"page": ARTICLE, "track": "1"},
                       headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    assert client.get(f"/embed/prompts/{prompt.id}/c",
                      query_string={"page": ARTICLE}).status_code == 404
    assert client.get(f"/embed/prompts/{prompt.id}/a",
                      query_string={"page": "https://evil.example/"}).status_code == 400


def test_counters_and_the_give_link(client, prompt):
    for event in ("impressions", "impressions", "dismissals"):
        assert client.post(f"/embed/prompts/{prompt.id}/a/{event}").status_code == 204
    assert client.post(f"/embed/prompts/{prompt.id}/b/impressions").status_code == 204
    give = client.get(f"/embed/prompts/{prompt.id}/b/give",
                      query_string={"page": ARTICLE + "?x=1", "track": "1"})
    assert give.status_code == 303
    target = urlsplit(give.headers["Location"])
    assert (target.netloc, target.path) == ("donate.test", "/campaigns/winter-appeal")
    assert parse_qs(target.query) == {
        "utm_source": ["embed-prompt"], "utm_medium": ["embed"],
        "utm_campaign": ["winter-appeal"], "utm_content": [f"prompt-{prompt.id}-b"],
        "utm_term": ["news.example/2026/12/gaza-water"]}
    assert counts(prompt) == {"a": (2, 1, 0), "b": (1, 0, 1)}
    # Clicks are the give link's own; posted from elsewhere: refused; a variant the prompt
    # has not: 404.
    assert client.post(f"/embed/prompts/{prompt.id}/a/clicks").status_code == 404
    assert client.post(f"/embed/prompts/{prompt.id}/a/impressions",
                       headers={"Origin": NEWSROOM}).status_code == 403
    prompt.headline_b = ""
    db.session.commit()
    assert client.post(f"/embed/prompts/{prompt.id}/b/impressions").status_code == 404


def test_the_counters_are_rate_limited_per_address_the_decision_is_not(make_app, database_url,
                                                                       prompt):
    client = make_app(database_url, RATELIMIT_ENABLED=True, RATELIMIT_PROMPT_EVENTS="3 per minute",
                      EMBED_ORIGINS=NEWSROOM).test_client(use_cookies=False)
    codes = [client.post(f"/embed/prompts/{prompt.id}/a/impressions").status_code
             for _ in range(3)]
    give = client.get(f"/embed/prompts/{prompt.id}/a/give",
                      query_string={"page": ARTICLE, "track": "1"})
    # Over the budget: a counter is refused, but the reader still goes on to give.
    assert codes + [give.status_code] == [204, 204, 204, 303]
    assert client.post(f"/embed/prompts/{prompt.id}/a/dismissals").status_code == 429
    assert counts(prompt) == {"a": (3, 0, 0)}
    for _ in range(5):
        assert client.get("/embed/prompts/decision",
                          query_string={"page": ARTICLE}).status_code == 200
    client.environ_base["REMOTE_ADDR"] = "192.0.2.7"  # another reader
    assert client.post(f"/embed/prompts/{prompt.id}/a/dismissals").status_code == 204


def test_the_edge_keeps_only_decisions_any_reader_may_ask(app, client, prompt, monkeypatch):
    """Behind the edge (app/edge.py, off in the suite's apps), a decision asked without a
    reader's own id (a browser that asks not to be tracked sends none) is kept for the recheck
    window, for the very same parameters and headers; one with an id is that reader's alone
    and made afresh every time."""
    from app.edge import EdgeCache

    monkeypatch.setattr(app, "wsgi_app", EdgeCache(app.wsgi_app, entries=64, trusted_proxies=0))
    app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"] = 60
    untracked = {"Sec-GPC": "1"}
    shown = decision(client, untracked).get_json()["prompts"]
    assert [p["id"] for p in shown] == [prompt.id]
    assert [p["id"] for p in decision(client, rid="r1").get_json()["prompts"]] == [prompt.id]
    prompt.enabled = False
    db.session.commit()
    app.extensions.pop("prompt_candidates")  # the live prompts read anew (kept too: below)
    assert decision(client, untracked).get_json()["prompts"] == shown
    assert decision(client, untracked, email="1").get_json()["prompts"] == []
    assert decision(client, {"DNT": "1"}).get_json()["prompts"] == []
    assert decision(client, rid="r1").get_json()["prompts"] == []


def test_each_process_keeps_the_live_prompts_for_the_recheck_window(app, client, prompt):
    """Without the edge, each reader's decision is made anew, but on the live prompts as read
    at most CAMPAIGN_PAGE_RECHECK_SECONDS ago: a decision costs no query."""
    app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"] = 60
    assert [p["id"] for p in decision(client, rid="r1").get_json()["prompts"]] == [prompt.id]
    prompt.enabled = False
    db.session.commit()
    assert [p["id"] for p in decision(client, rid="r2").get_json()["prompts"]] == [prompt.id]
    app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"] = 0  # read every time
    assert decision(client, rid="r3").get_json()["prompts"] == []
