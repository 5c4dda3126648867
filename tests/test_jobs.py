"""Jobs marked ``after_response``: work whose time must not show in the answer of the request
that queued it (account mail). Inline, it runs once the response has been sent; outside a
request, right after the commit; with Redis, on the queue, or here after the response when Redis
cannot be reached."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from flask import has_request_context

from app import jobs
from app.extensions import csrf
from tests.conftest import UNDER_FAKETIME
from tests.support.servers import InFlight, serving

done: list[dict] = []
client_has_answer = threading.Event()


@jobs.after_response
def note(label: str) -> None:
    done.append({"label": label, "in_request": has_request_context()})


@jobs.after_response
def wait_for_the_client() -> None:
    """Finishes only once the test has read the whole answer: had it run before the answer was
    sent, the answer would wait for it, and the test would time out."""
    done.append({"answer_seen": client_has_answer.wait(timeout=5)})


def with_route(flask_app):
    @flask_app.post("/_test/after-response/<job>")
    def queue_it(job: str):
        jobs.enqueue(wait_for_the_client if job == "wait" else note, *(() if job == "wait"
                                                                        else (job,)))
        jobs.commit()
        return {"done_in_view": len(done)}

    csrf.exempt(queue_it)
    return flask_app


def test_inline_it_runs_after_the_answer_outside_the_request(make_app, database_url, app):
    done.clear()
    client = with_route(make_app(database_url)).test_client()
    response = client.post("/_test/after-response/mail", buffered=True)
    assert response.json == {"done_in_view": 0}
    assert done == [{"label": "mail", "in_request": False}]


def test_a_client_has_the_whole_answer_before_the_work_is_done(make_app, database_url, app,
                                                                  tmp_path):
    """Over real HTTP, as the embedded default serves: the answer arrives while the job is
    still waiting for it to arrive."""
    done.clear()
    client_has_answer.clear()
    served_app = with_route(make_app(database_url))
    in_flight = InFlight(served_app)
    with serving(served_app, in_flight) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=4)
        started = time.monotonic()
        connection.request("POST", "/_test/after-response/wait", headers={"Host": "donate.test"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        answered_in = time.monotonic() - started
        client_has_answer.set()
        in_flight.wait()
    assert response.status == 200, body
    assert answered_in < 4
    assert done == [{"answer_seen": True}]


def test_outside_a_request_it_runs_right_after_the_commit(app):
    done.clear()
    jobs.enqueue(note, "cli")
    assert done == []
    jobs.commit()
    assert done == [{"label": "cli", "in_request": False}]


def test_with_redis_it_is_queued_like_any_job(make_app, database_url, app, redis_url):
    done.clear()
    queue_app = with_route(make_app(database_url, REDIS_URL=redis_url))
    response = queue_app.test_client().post("/_test/after-response/mail", buffered=True)
    assert response.status_code == 200
    assert done == []
    queued = queue_app.extensions["jobs"].queue.get_jobs()
    assert [(job.func_name, job.args) for job in queued] == [("tests.test_jobs.note", ("mail",))]


def test_with_redis_unreachable_it_runs_here_after_the_answer(make_app, database_url, app):
    """Nothing in the database would bring such work back (unlike webhook events or mail,
    which the sweeps find), so it is not left to the queue."""
    done.clear()
    queue_app = with_route(make_app(database_url, REDIS_URL="redis://127.0.0.1:9/0"))
    response = queue_app.test_client().post("/_test/after-response/mail", buffered=True)
    assert response.json == {"done_in_view": 0}
    assert done == [{"label": "mail", "in_request": False}]


def test_a_secret_argument_stays_out_of_logs_and_job_descriptions():
    secret = jobs.Secret("$argon2id$v=19$m=65536,t=3,p=4$salt$hash")
    assert secret == "$argon2id$v=19$m=65536,t=3,p=4$salt$hash"
    assert "argon2" not in repr(("noa@example.org", secret))


@pytest.mark.skipif(UNDER_FAKETIME, reason="under faketime a timed wait between threads never "
                    "ends, so workers run without their command channel there "
                    "(tests/conftest.py: threads_that_end_under_faketime)")
def test_a_worker_stops_at_once_whatever_its_command_channel_was_doing(make_app, database_url,
                                                                       redis_url):
    """RQ stops a worker by unsubscribing from its command channel, then stopping the thread
    that reads it, which redis-py waits for. A thread that came round after the unsubscribe
    waits for a subscription as long as one read lasts: RQ's 60 s made a worker's stop (each
    `--burst` run, a SIGTERM) take a minute now and then; ours waits a second at most."""
    worker = jobs.worker(make_app(database_url, REDIS_URL=redis_url))
    worker.subscribe()
    worker.pubsub.unsubscribe()
    deadline = time.monotonic() + 10
    while worker.pubsub.subscribed and time.monotonic() < deadline:  # the reply read
        time.sleep(0.01)
    assert not worker.pubsub.subscribed and worker.pubsub_thread.is_alive()
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 10  # 60 with RQ's own subscribe
    assert not worker.pubsub_thread.is_alive()
