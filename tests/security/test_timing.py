"""How long sign-up, the sign-in link and reset take to answer does not tell whether an address
has an account (issue 11 item 4: medians over 12 tries were 47 ms for an address with an
account and 1,087 ms for a new one on sign-up, 48 against 12 ms on reset, 76 against 23 ms for
a sign-in link).

Measured as an attacker would: raw HTTP requests, timed by a process of their own
(``tests.support.http_timer``), to the app served by Werkzeug on 127.0.0.1, in both topologies:
the embedded default (jobs inline, so account work is done once the response is sent) and with
``REDIS_URL`` (the request queues a job for a worker; none runs here). Password hashing costs
enough to show: Argon2id with a quarter of production's memory, one pass instead of three and
one lane instead of four (~35 ms a hash here, ~0.5 s in production), not the suite's cheapest.

Tries for the address with an account and for new addresses alternate (ABBA, so that a drift in
the machine's load falls on both alike), after a warm-up. Between tries the test waits until the
server is done with the previous request, so that its mail is not counted in the next one's
time. The medians of the answer times must differ by less than 20%. A machine busy with other
work makes single tries vary by several times, so when the medians of one round of tries are
further apart, the test takes another round and compares the medians of all tries so far, up to
``ROUNDS``: a real difference (the code before this test: 2 to 4 times as long for one kind of
address) stays in every round. ``bench/account_timing.py`` measures the same at production cost.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from app import create_app, jobs
from app.extensions import db
from app.mail import OutboundEmail
from tests.conftest import BASE_CONFIG, migrated_url
from tests.support.accounts import PASSWORD, make_account
from tests.support.flow import hidden_value
from tests.support.servers import InFlight, serving

# Run alone (make test runs them after the parallel run): another worker's tests on the same
# cores would time the machine, not the app.
pytestmark = pytest.mark.timing

KNOWN = "known@example.org"
MODERATE_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 16384, "ARGON2_PARALLELISM": 1}
WARM_UP = 1  # tries of each kind, not counted
TRIES = 8  # of each kind, per round
ROUNDS = 5
MAX_DIFFERENCE = 0.20


@dataclass
class Served:
    app: Flask
    port: int
    in_flight: InFlight
    topology: str
    timer: subprocess.Popen

    def form(self, path: str) -> tuple[str, str]:
        """The session cookie and CSRF token of the form at ``path`` (not timed)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers={"Host": "donate.test"})
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()
        assert response.status == 200, body[:500]
        return (response.getheader("Set-Cookie").split(";", 1)[0],
                hidden_value(body, "csrf_token"))

    def timed_post(self, path: str, cookie: str, form: dict) -> float:
        """Seconds from sending the form to the last byte of the answer (a redirect to "check
        your email"), as the timing process saw it; then waits until the server is done with
        the request."""
        self.timer.stdin.write(json.dumps({
            "method": "POST", "port": self.port, "path": path, "body": urlencode(form),
            "headers": {"Host": "donate.test", "Cookie": cookie,
                        "Content-Type": "application/x-www-form-urlencoded"}}) + "\n")
        self.timer.stdin.flush()
        answer = json.loads(self.timer.stdout.readline())
        assert answer["status"] == 303, answer["body"]
        self.in_flight.wait()
        return answer["seconds"]

    def work_done(self) -> tuple[int, int]:
        """Mail stored for the address with an account, and jobs waiting in the queue."""
        with self.app.app_context():
            mails = db.session.scalar(select(func.count()).select_from(OutboundEmail)
                                      .where(OutboundEmail.recipient == KNOWN))
            queued = jobs.backend().queue.count if self.topology == "rq" else 0
        return mails, queued


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request) -> str:
    return migrated_url(request, request.param, "timing")


@pytest.fixture(scope="module", params=["inline", "rq"])
def served(request, database, tmp_path_factory) -> Iterator[Served]:
    """The app on its own committed database, served on 127.0.0.1 in a thread (jobs inline, or
    queued on a real Redis that no worker reads), and the process that times requests."""
    settings = {**BASE_CONFIG, **MODERATE_ARGON2, "SERVER_NAME": None,
                "SQLALCHEMY_DATABASE_URI": database,
                "MAIL_OUTBOX_DIR": str(tmp_path_factory.mktemp("timing-outbox"))}
    if request.param == "rq":
        settings["REDIS_URL"] = request.getfixturevalue("redis_server").url
    app = create_app(settings)
    with app.app_context():
        make_account(KNOWN)
    in_flight = InFlight(app)
    try:
        with serving(app, in_flight) as server:
            timer = subprocess.Popen([sys.executable, "-m", "tests.support.http_timer"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                yield Served(app=app, port=server.server_port, in_flight=in_flight,
                             topology=request.param, timer=timer)
            finally:
                timer.stdin.close()
                timer.wait(timeout=10)
                timer.stdout.close()
    finally:
        if request.param == "rq":
            with Redis.from_url(settings["REDIS_URL"]) as connection:
                connection.flushall()


def unknown_address() -> str:
    return f"new-{uuid.uuid4().hex[:12]}@example.org"


def assert_answers_alike(served: Served, path: str, fields) -> None:
    """Post the form at ``path`` (``fields(email)``) for the address with an account and for
    new ones in turn, and compare the medians of their answer times."""
    cookie, token = served.form(path)
    mails, queued = served.work_done()
    times: dict[bool, list[float]] = {True: [], False: []}

    def tries(kinds: list[bool]) -> None:
        for known in kinds:
            email = KNOWN if known else unknown_address()
            times[known].append(served.timed_post(path, cookie, {"csrf_token": token,
                                                                   **fields(email)}))

    tries([True, False] * WARM_UP)
    del times[True][:], times[False][:]
    for _ in range(ROUNDS):
        tries([True, False, False, True] * (TRIES // 2))
        known, unknown = statistics.median(times[True]), statistics.median(times[False])
        if abs(known - unknown) < MAX_DIFFERENCE * min(known, unknown):
            break
    assert abs(known - unknown) < MAX_DIFFERENCE * min(known, unknown), (
        f"median answer over {len(times[True])} tries of each: {known * 1000:.1f} ms for an "
        f"address with an account, {unknown * 1000:.1f} ms for new ones")
    # ... and not by skipping the work: inline, the address with an account got its mail once
    # each answer was sent; with Redis, every request (either address) queued its job.
    sent = WARM_UP + len(times[True])
    if served.topology == "inline":
        assert served.work_done() == (mails + sent, 0)
    else:
        assert served.work_done() == (mails, queued + 2 * sent)


def test_sign_up_takes_as_long_for_an_address_with_an_account(served):
    assert_answers_alike(served, "/account/signup", lambda email: {
        "email": email, "password": PASSWORD, "name": "Noa Levi"})


def test_a_sign_in_link_request_takes_as_long_for_an_address_with_an_account(served):
    assert_answers_alike(served, "/account/signin/link", lambda email: {"email": email})


def test_a_reset_request_takes_as_long_for_an_address_with_an_account(served):
    assert_answers_alike(served, "/account/reset", lambda email: {"email": email})
