"""The edge (app/edge.py): the embeds' answers that are the same for every reader, kept by each
process for a moment and served ahead of Flask, yet still logged, counted, named by a request id
and revalidated; never a reader's own answer, never to another host."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import event, select

from app import edge
from app.campaigns.models import Campaign
from app.extensions import db
from app.logs import JsonFormatter
from app.metrics import REQUESTS
from tests.embeds.conftest import BOXES, NEWSROOM
from tests.factories import paid_gift
from tests.support.news import sign_in, verified_supporter

CAMPAIGN_BOX = BOXES[0]
RAISED = "</strong> raised"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app, monkeypatch) -> Clock:
    """The suite's app behind an edge of its own (the suite's apps have none: EDGE_CACHE off),
    on a clock the test moves; live figures may be kept 60 s."""
    clock = Clock()
    monkeypatch.setattr(app, "wsgi_app", edge.EdgeCache(app.wsgi_app, entries=64,
                                                         trusted_proxies=0, clock=clock))
    app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"] = 60
    return clock


@pytest.fixture
def statements(app) -> list[str]:
    """The SQL statements the app runs from here on."""
    seen: list[str] = []
    listener = lambda conn, cursor, statement, *args: seen.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    yield seen
    event.remove(db.engine, "before_cursor_execute", listener)


def raised(response) -> str:
    text = response.get_data(as_text=True)
    return text[text.rindex("<strong>", 0, text.index(RAISED)) + 8:text.index(RAISED)]


def give_fifty():
    paid_gift(db.session.scalar(select(Campaign).where(Campaign.slug == "twenty")))


def test_a_box_is_kept_for_its_seconds_then_read_again(app, client, newsroom, clock,
                                                       statements):
    assert raised(client.get(CAMPAIGN_BOX)) == "$0"
    give_fifty()
    statements.clear()
    kept = client.get(CAMPAIGN_BOX)
    assert raised(kept) == "$0" and statements == []  # no query: Flask was not entered
    assert raised(client.get(CAMPAIGN_BOX + "&x=1")) == "$50"  # another address, its own
    clock.now += 59.9
    assert raised(client.get(CAMPAIGN_BOX)) == "$0"
    clock.now += 0.2
    assert raised(client.get(CAMPAIGN_BOX)) == "$50"


def test_a_kept_answer_is_logged_counted_and_named_like_any_other(app, client, newsroom,
                                                                   clock, caplog):
    caplog.set_level(logging.INFO, logger="newsfund.request")
    first = client.get(CAMPAIGN_BOX)
    route = "/embed/campaigns/<slug>"
    counted = REQUESTS.labels(route, "GET", "200")._value.get()
    second = client.get(CAMPAIGN_BOX)
    assert second.get_data() == first.get_data()
    assert REQUESTS.labels(route, "GET", "200")._value.get() == counted + 1
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == "newsfund.request"]
    assert [(line["route"], line["status"]) for line in lines] == [(route, 200)] * 2
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert [line["request_id"] for line in lines] == ids and ids[0] != ids[1]
    assert second.headers.getlist("X-Request-ID") == [ids[1]]
    for name in ("Content-Security-Policy", "Cache-Control", "ETag", "Content-Type",
                 "X-Content-Type-Options"):
        assert second.headers[name] == first.headers[name], name


def test_a_kept_answer_is_revalidated_by_its_etag(client, newsroom, clock):
    etag = client.get(CAMPAIGN_BOX).headers["ETag"]
    again = client.get(CAMPAIGN_BOX, headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(CAMPAIGN_BOX, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(CAMPAIGN_BOX, headers={"If-None-Match": "*"}).status_code == 304


def test_a_request_with_cookies_or_credentials_is_never_served_kept_answers(
        app, client, newsroom, clock):
    assert raised(client.get(CAMPAIGN_BOX)) == "$0"
    give_fifty()
    assert raised(client.get(CAMPAIGN_BOX, headers={"Authorization": "Bearer x"})) == "$50"
    assert raised(client.get(CAMPAIGN_BOX)) == "$0"  # the kept one, for the cookieless
    with_cookie = app.test_client()
    with_cookie.set_cookie("seen", "1", domain="donate.test")
    assert raised(with_cookie.get(CAMPAIGN_BOX)) == "$50"


def test_a_kept_answer_is_never_served_to_another_host(client, newsroom, clock):
    assert client.get(CAMPAIGN_BOX).status_code == 200
    other = client.get(CAMPAIGN_BOX, headers={"Host": "evil.example"})
    assert other.status_code == 400  # what the app answers a host that is not ours
    forwarded = client.get(CAMPAIGN_BOX, headers={"X-Forwarded-Host": "evil.example"})
    assert forwarded.status_code == 200  # no trusted proxy: the header means nothing...
    assert "Set-Cookie" not in forwarded.headers  # ...and it was answered by the app anew


def test_answers_varying_on_origin_are_kept_per_origin(app, client, newsroom, clock):
    path = "/embed/campaigns/twenty/progress"
    second = "https://levantwire.example:8443"
    assert client.get(path, headers={"Origin": NEWSROOM}).headers[
        "Access-Control-Allow-Origin"] == NEWSROOM
    assert client.get(path, headers={"Origin": second}).headers[
        "Access-Control-Allow-Origin"] == second
    assert "Access-Control-Allow-Origin" not in client.get(
        path, headers={"Origin": "https://evil.example"}).headers
    assert client.get(path, headers={"Origin": NEWSROOM}).headers[
        "Access-Control-Allow-Origin"] == NEWSROOM


def test_a_readers_own_answers_are_never_kept(app, client, newsroom, clock, statements):
    from app.embeds.services import EmbedSigner

    reader = verified_supporter()
    token = EmbedSigner("test-secret-key").reader_token(reader.id, reader.session_version)
    path = f"{BOXES[2]}&reader={token}"
    assert client.get(path).headers["Cache-Control"] == "private, no-store"
    statements.clear()
    assert client.get(path).status_code == 200 and statements  # read again
    statements.clear()
    assert client.get("/embed/campaigns/twenty").status_code == 400  # no page: not kept
    assert client.get("/embed/campaigns/twenty").status_code == 400 and statements
    signed_in = app.test_client()
    sign_in(signed_in, reader)
    statements.clear()
    assert signed_in.get(BOXES[0]).status_code == 200 and statements


def test_what_no_view_marks_is_never_kept(app, client, newsroom, clock, statements):
    client.get("/healthz")
    statements.clear()
    assert client.get("/healthz").status_code == 200 and statements


def test_the_shareable_rule():
    assert edge._shareable("200 OK", [("Vary", "Origin, Sec-GPC, DNT, Cookie")])
    assert not edge._shareable("200 OK", [("Vary", "Origin, Accept-Language")])
    assert not edge._shareable("200 OK", [("Set-Cookie", "session=x")])
    assert not edge._shareable("404 NOT FOUND", [])


def test_the_least_recently_used_answer_goes_first(app, client, newsroom, clock, statements,
                                                   monkeypatch):
    monkeypatch.setattr(app, "wsgi_app", edge.EdgeCache(app.wsgi_app.wsgi_app, entries=2,
                                                         trusted_proxies=0, clock=clock))
    pages = [f"{CAMPAIGN_BOX}&n={n}" for n in range(3)]
    for page in pages:
        client.get(page)
    statements.clear()
    client.get(pages[2])
    client.get(pages[1])
    assert statements == []
    client.get(pages[0])  # dropped when the third came
    assert statements


def test_edge_cache_setting(make_app, tmp_path):
    url = f"sqlite:///{tmp_path}/none.db"
    assert isinstance(make_app(url, EDGE_CACHE=True).wsgi_app, edge.EdgeCache)
    assert not isinstance(make_app(url, EDGE_CACHE=False).wsgi_app, edge.EdgeCache)
