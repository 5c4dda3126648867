"""The decision answered without Flask (app/prompts/fast.py) is the view's answer, header for
header, and is logged and counted like any; what it must not answer goes to Flask."""

from __future__ import annotations

import json
import logging

import pytest
from flask import request_started

from app.logs import JsonFormatter
from app.metrics import REQUESTS
from app.prompts.decide import DonorStatus
from app.prompts.models import Placement, Segment
from app.prompts.services import Known, StatusSigner
from app.prompts.views import HEIGHTS
from tests.prompts.conftest import ARTICLE, NEWSROOM, add_prompt

pytestmark = pytest.mark.usefixtures("newsroom")

PATH = "/embed/prompts/decision"
#: What differs between two answers of the same question whoever gives them.
OWN = {"X-Request-ID", "Date"}


@pytest.fixture
def through_flask(app) -> list[str]:
    """The paths Flask's request machinery saw (a request the fast path answered is not one)."""
    seen: list[str] = []

    def started(sender, **_):
        from flask import request
        seen.append(request.path)

    request_started.connect(started, app)
    yield seen
    request_started.disconnect(started, app)


def ask(app, query: dict, headers: dict | None = None, *, cookie: bool = False):
    """The decision as a reader's browser asks it; with ``cookie``, as one that sends a cookie
    of ours (which only Flask answers: it is meaningless, so the answer must be the same)."""
    client = app.test_client()
    if cookie:
        client.set_cookie("seen-us", "1", domain="donate.test")
    return client.get(PATH, query_string={"page": ARTICLE, **query}, headers=headers or {})


def same(fast, flask) -> None:
    assert (fast.status_code, fast.get_data()) == (flask.status_code, flask.get_data())
    assert sorted((k, v) for k, v in fast.headers if k not in OWN) == \
        sorted((k, v) for k, v in flask.headers if k not in OWN)


@pytest.mark.parametrize("query,headers", [
    ({"rid": "reader-1", "views": "3"}, {"Origin": NEWSROOM}),
    ({"rid": "reader-2", "views": "1", "email": "1"}, {}),
    ({"rid": "reader-3"}, {"Origin": "https://evil.example"}),
    ({"rid": "reader-4", "views": "5"}, {"Sec-GPC": "1", "Origin": NEWSROOM}),
    ({"rid": "reader-5", "dismissed": "998,999", "seen": "999.all.2"}, {"DNT": "1"}),
    ({"views": "many", "gave_until": "soon"}, {}),
])
def test_the_answer_without_flask_is_the_views(app, campaign, through_flask, query, headers):
    prompt = add_prompt(campaign)
    add_prompt(campaign, name="Bar", placement=Placement.BOTTOM_BAR, segment=Segment.FROM_EMAIL)
    fast = ask(app, query, headers)
    assert through_flask == []
    assert fast.status_code == 200 and fast.get_json()["prompts"][0]["id"] == prompt.id
    flask = ask(app, query, headers, cookie=True)
    assert through_flask == [PATH]
    same(fast, flask)


def test_the_status_token_is_read_without_flask(app, campaign, through_flask):
    prompt = add_prompt(campaign, segment=Segment.MONTHLY_DONOR)
    monthly = StatusSigner("test-secret-key").token(Known(donor=DonorStatus.MONTHLY))
    recent = StatusSigner("test-secret-key").token(Known(donor=DonorStatus.RECENT))
    shown = ask(app, {"rid": "r1", "status": monthly}).get_json()["prompts"]
    assert [(p["id"], p["height"]) for p in shown] == [(prompt.id, HEIGHTS[Placement.OVERLAY])]
    assert ask(app, {"rid": "r1", "status": recent}).get_json()["prompts"] == []
    assert ask(app, {"rid": "r1", "status": monthly[:-2]}).get_json()["prompts"] == []
    assert through_flask == []
    same(ask(app, {"rid": "r1", "status": monthly}), ask(app, {"rid": "r1", "status": monthly},
                                                            cookie=True))


@pytest.mark.parametrize("query,headers,status", [
    ({"page": "https://evil.example/story"}, {}, 400),  # not the newsroom's: Flask's 400 page
    ({"reader": "a-follow-box-token"}, {}, 200),  # needs the database: Flask
    ({"rid": "r1"}, {"Host": "evil.example"}, 400),  # not our host
    ({"rid": "r1"}, {"If-None-Match": '"x"'}, 200),  # conditional: Flask
])
def test_what_flask_must_answer_goes_to_flask(app, through_flask, query, headers, status):
    response = ask(app, query, headers)
    assert response.status_code == status
    assert through_flask == [PATH]


def test_a_query_that_is_not_utf8_goes_to_flask(app, through_flask):
    response = app.test_client().get(f"{PATH}?page=%ff")
    assert response.status_code == 400 and through_flask == [PATH]


def test_an_answer_without_flask_is_logged_counted_and_named(app, campaign, caplog,
                                                            through_flask):
    add_prompt(campaign)
    caplog.set_level(logging.INFO, logger="newsfund.request")
    counted = REQUESTS.labels(PATH, "GET", "200")._value.get()
    first, second = ask(app, {"rid": "r1"}), ask(app, {"rid": "r2"})
    assert through_flask == []
    assert REQUESTS.labels(PATH, "GET", "200")._value.get() == counted + 2
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == "newsfund.request"]
    assert [(line["route"], line["status"], line["method"]) for line in lines] == [
        (PATH, 200, "GET")] * 2
    assert [line["request_id"] for line in lines] == [first.headers["X-Request-ID"],
                                                      second.headers["X-Request-ID"]]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_failure_without_flask_is_answered_by_flask(app, campaign, monkeypatch,
                                                      through_flask):
    from app.prompts import fast

    def broken(*args, **kwargs):
        raise RuntimeError("the database is gone")

    add_prompt(campaign)
    monkeypatch.setattr(fast, "known_by_status", broken)
    assert ask(app, {"rid": "r1"}).status_code == 200
    assert through_flask == [PATH]
