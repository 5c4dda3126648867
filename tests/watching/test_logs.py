"""Logs: one JSON line per request and per job, each request with its id; never a password, a
token or a form field."""

from __future__ import annotations

import json
import logging
import re

from redis import Redis
from rq import Queue

from app import jobs, logs
from app.extensions import csrf
from tests.factories import make_campaign
from tests.support.accounts import PASSWORD, make_account, sign_in
from tests.support.flow import give


def lines(caplog, logger: str | None = None) -> list[dict]:
    """The records captured, each as the JSON line it is written as."""
    formatter = logs.JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records
            if logger is None or record.name == logger]


def test_each_request_has_an_id_returned_in_its_answer(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", one) for one in ids)
    assert ids[0] != ids[1]
    # Served directly (no trusted proxy), a client's own id is not taken.
    sent = client.get("/healthz", headers={"X-Request-ID": "client-made-1"})
    assert sent.headers["X-Request-ID"] != "client-made-1"


def test_behind_a_trusted_proxy_its_request_id_is_kept(make_app, database_url):
    client = make_app(database_url, TRUSTED_PROXIES=1).test_client()
    nginx = "3f1c0a9e2b7d4c6e8a0b1c2d3e4f5a6b"
    assert client.get("/healthz", headers={"X-Request-ID": nginx}).headers["X-Request-ID"] \
        == nginx
    # ... unless it could write into the logs: replaced by one of ours.
    for odd in ("a\ttab", "x" * 129, "{\"level\": \"ERROR\"}", "a b"):
        answer = client.get("/healthz", headers={"X-Request-ID": odd})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"]), odd


def test_one_line_per_request_with_route_status_duration_and_user(client, app, caplog):
    caplog.set_level(logging.INFO)
    make_campaign("twenty")
    anonymous = client.get("/campaigns/twenty?utm_source=private-token-123")
    [line] = lines(caplog, "newsfund.request")
    assert line["request_id"] == anonymous.headers["X-Request-ID"]
    assert (line["level"], line["method"], line["route"], line["status"]) == (
        "INFO", "GET", "/campaigns/<slug>", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "user_id" not in line
    assert "private-token-123" not in json.dumps(line)  # no query string, no path

    supporter = make_account()
    caplog.clear()
    signed_in = sign_in(client)
    account = client.get("/account")
    assert account.status_code == 200
    request_lines = lines(caplog, "newsfund.request")
    assert [(one["method"], one["route"], one["status"]) for one in request_lines] == [
        ("GET", "/account/signin", 200), ("POST", "/account/signin", signed_in.status_code),
        ("GET", "/account", 200)]
    assert request_lines[-1]["user_id"] == supporter.id
    assert all(one["user_id"] == supporter.id for one in request_lines[1:])
    assert request_lines[-1]["request_id"] == account.headers["X-Request-ID"]
    # Nothing logged holds the password, the form's token or the session cookie.
    everything = json.dumps(lines(caplog))
    assert PASSWORD not in everything
    assert "csrf" not in everything.lower()
    assert client.get_cookie("session", domain="donate.test").value not in everything


def test_an_error_is_logged_with_its_request_id(make_app, database_url, caplog):
    caplog.set_level(logging.INFO)
    flask_app = make_app(database_url, PROPAGATE_EXCEPTIONS=False)  # as served: a 500 page

    @flask_app.get("/_test/boom/<token>")
    def boom(token: str):
        raise RuntimeError("boom")

    answer = flask_app.test_client().get("/_test/boom/link-token-123")
    assert answer.status_code == 500
    logged = lines(caplog)
    error = next(one for one in logged if "exception" in one)
    assert "RuntimeError: boom" in error["exception"]
    assert error["message"] == "Exception on GET /_test/boom/<token>"
    assert error["request_id"] == answer.headers["X-Request-ID"]
    request_line = next(one for one in logged if one["logger"] == "newsfund.request")
    assert (request_line["level"], request_line["status"], request_line["route"]) == (
        "ERROR", 500, "/_test/boom/<token>")
    assert "link-token-123" not in json.dumps(logged)


def test_one_line_per_inline_job(client, app, caplog):
    caplog.set_level(logging.INFO)
    make_campaign("twenty")
    give(client, "twenty")
    job_lines = lines(caplog, "newsfund.job")
    assert job_lines, "a gift runs jobs (its receipt's delivery at least)"
    assert {line["job"] for line in job_lines} >= {"deliver_emails"}
    assert all(line["status"] == "ok" and line["duration_ms"] >= 0 for line in job_lines)
    # A job's line carries the id of the request it ran in.
    requests = {line["request_id"] for line in lines(caplog, "newsfund.request")}
    assert {line["request_id"] for line in job_lines} <= requests


def fails_in_the_worker() -> None:
    logging.getLogger("tests.job").warning("about to fail")
    raise ValueError("no luck")


def test_one_line_per_worker_job_and_its_records_carry_the_job(make_app, database_url,
                                                                   redis_url, caplog):
    caplog.set_level(logging.INFO)
    flask_app = make_app(database_url, REDIS_URL=redis_url, JOBS_RETRY_INTERVALS=[])
    queue = Queue(flask_app.config["JOBS_QUEUE"], connection=Redis.from_url(redis_url))
    good = queue.enqueue(len, "abc")
    bad = queue.enqueue(fails_in_the_worker)
    jobs.worker(flask_app).work(burst=True)
    job_lines = lines(caplog, "newsfund.job")
    assert [(line["job"], line["job_id"], line["status"], line["level"])
            for line in job_lines] == [("builtins.len", good.id, "ok", "INFO"),
                                       (f"{__name__}.fails_in_the_worker", bad.id, "failed",
                                        "ERROR")]
    [warning] = lines(caplog, "tests.job")
    assert (warning["job"], warning["job_id"]) == (f"{__name__}.fails_in_the_worker", bad.id)


def follow_up() -> None:
    logging.getLogger("tests.job").info("the follow-up")


def queued_by_a_request() -> None:
    logging.getLogger("tests.job").info("queued by a request")
    jobs.enqueue(follow_up)
    jobs.commit()  # in the worker: run right here, after the commit


def test_a_workers_lines_carry_the_id_of_the_request_that_queued_the_job(
        make_app, database_url, redis_url, caplog):
    caplog.set_level(logging.INFO)
    flask_app = make_app(database_url, REDIS_URL=redis_url)

    @flask_app.post("/_test/queue")
    def queue_it():
        jobs.enqueue(queued_by_a_request)
        jobs.commit()
        return "queued"

    csrf.exempt(queue_it)
    answer = flask_app.test_client().post("/_test/queue")
    caplog.clear()
    jobs.worker(flask_app).work(burst=True)
    logged = [line for line in lines(caplog) if line["logger"] in ("tests.job", "newsfund.job")]
    assert [(line["logger"], line["job"]) for line in logged] == [
        ("tests.job", f"{__name__}.queued_by_a_request"),
        ("tests.job", "follow_up"), ("newsfund.job", "follow_up"),
        ("newsfund.job", f"{__name__}.queued_by_a_request")]
    assert {line["request_id"] for line in logged} == {answer.headers["X-Request-ID"]}
