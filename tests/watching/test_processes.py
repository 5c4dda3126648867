"""The app run as production runs it, in processes of its own (tests/watching/
production_process.py, started once for this module): request counts summed over gunicorn-style
worker processes, JSON lines on stderr, and errors sent to Sentry (a DSN on a local
pytest-httpserver) from a request and from an RQ job, with nothing imported without a DSN."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import migrated_url
from tests.support.metrics import samples, value

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(request, redis_server, tmp_path_factory):
    """One run of the production process; its report, its stderr and what Sentry received."""
    folder = tmp_path_factory.mktemp("prometheus")
    database_url = migrated_url(request, "sqlite", "processes")
    with HTTPServer(host="127.0.0.1") as sentry:
        sentry.expect_request("/api/4242/envelope/", method="POST").respond_with_data("{}")
        dsn = f"http://publickey@127.0.0.1:{sentry.port}/4242"
        done = subprocess.run(
            [sys.executable, "-m", "tests.watching.production_process", database_url,
             redis_server.url, dsn], cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(folder)})
        assert done.returncode == 0, done.stderr[-5000:]
        envelopes = [_decoded(req) for req, _ in sentry.log]
    return json.loads(done.stdout), done.stderr, envelopes


def _decoded(req) -> list[dict]:
    """The items of one Sentry envelope (newline-separated JSON: a header, then each item's
    header and payload)."""
    body = req.get_data()
    encoding = req.headers.get("Content-Encoding", "")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def test_request_counts_are_summed_over_the_worker_processes(run):
    report, _, _ = run
    figures = samples(report["metrics"])
    # 3 in the forked process, 2 in the one that answered the scrape.
    assert value(figures, "newsfund_http_requests_total", route="/healthz", method="GET",
                 status="200") == 5
    assert value(figures, "newsfund_http_requests_total", route="/campaigns/<slug>",
                 method="GET", status="404") == 1
    assert value(figures, "newsfund_http_request_duration_seconds_count", route="/healthz") == 5


def test_every_line_on_stderr_is_json_with_the_request_id(run):
    _, stderr, _ = run
    written = [json.loads(line) for line in stderr.splitlines()]
    requests = [(line["request_id"], line["route"], line["status"]) for line in written
                if line["logger"] == "newsfund.request"]
    assert requests[:4] == [("from-nginx-1", "/healthz", 200)] * 3 + [
        (requests[3][0], "/campaigns/<slug>", 404)]
    assert len(requests[3][0]) == 32
    jobs = [line for line in written if line["logger"] == "newsfund.job"]
    assert [(line["job"], line["status"]) for line in jobs] == [
        ("tests.watching.production_process.fail_in_the_worker", "failed")]


def test_without_a_dsn_sentry_is_not_even_imported(run):
    report, _, _ = run
    assert report["sentry_imported_without_dsn"] is False


def test_errors_go_to_sentry_from_requests_and_jobs_without_secrets(run):
    report, _, envelopes = run
    assert report["boom_status"] == 500
    events = [item for envelope in envelopes for item in envelope
              if isinstance(item, dict) and "exception" in item]
    errors = {event["exception"]["values"][-1]["type"]: event for event in events}
    assert set(errors) == {"ZeroDivisionError", "LookupError"}
    from_request = errors["ZeroDivisionError"]
    assert from_request["transaction"] == "/_test/boom/<token>"
    assert from_request["request"]["url"] == "/_test/boom/<token>"
    assert from_request["request"]["method"] == "POST"
    assert errors["LookupError"]["exception"]["values"][-1]["value"] == \
        "a job that fails in the worker"
    assert errors["LookupError"]["extra"]["rq-job"]["func"] == \
        "tests.watching.production_process.fail_in_the_worker"
    # The request's and job's own log lines are not sent again.
    loggers = {item.get("logger") for envelope in envelopes for item in envelope
               if isinstance(item, dict)}
    assert not loggers & {"newsfund.request", "newsfund.job"}
    sent = json.dumps(envelopes)
    for secret in ("secret-link-token", "secret-query", "secret-password"):
        where = [m.start() for m in __import__("re").finditer(secret, sent)]
        assert not where, [sent[max(0, i - 300):i + 50] for i in where]
