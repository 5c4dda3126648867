"""The production topology on loopback (issue 12): PostgreSQL, Redis, two gunicorn instances on
two ports, two RQ workers and the scheduler, each started from its line of the Procfile with the
settings in the environment, mail to an SMTP sink. The test drives both instances as browsers
and the payment provider would, breaks things while it does (a worker killed with SIGKILL, Redis
stopped for 10 seconds, PostgreSQL restarted, a web instance killed), runs the sweep, and then
checks the money, the receipts, the mail and /metrics against the database.

Payments are the sandbox provider's (its webhooks are Stripe-shaped and signed, and go through
the same pipeline as Stripe's); Stripe itself (STRIPE_* on a stub) is not part of this run.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from redis import Redis
from sqlalchemy import func, select

from app import create_app
from app.accounts.models import Supporter
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.giving.models import Gift, GiftStatus, RecurringPlan
from app.news.demo import seed_news
from app.news.models import Article
from app.payments.base import RefundResult
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.templating import org_zone
from tests.factories import make_campaign
from tests.support import stripe_objects as so
from tests.support.accounts import PASSWORD, make_account
from tests.support.flow import hidden_value
from tests.support.links import links_of
from tests.support.metrics import samples, value
from tests.support.news import confirmed_subscriber
from tests.support.pgcluster import PgCluster, free_port
from tests.support.redisserver import RedisServer
from tests.support.smtp import Inbox, smtp_server

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "http://donate.test"
SECRET_KEY = "topology-secret-key"
SLUG = "topology"
# The whole run, processes started to processes stopped, must stay well under this.
BUDGET_SECONDS = 170


def procfile() -> dict[str, list[str]]:
    """The Procfile's process types and their commands."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    return commands


class Topology:
    """The running processes, their logs, and what the test needs to reach them."""

    def __init__(self, root: Path, env: dict[str, str], pg: PgCluster, redis: RedisServer,
                 inbox: Inbox):
        self.root, self.env, self.pg, self.redis, self.inbox = root, env, pg, redis, inbox
        self.commands = procfile()
        self.processes: dict[str, subprocess.Popen] = {}
        self.web_ports: dict[str, int] = {}
        # Requests each web instance answered, for its /metrics to be checked against.
        self.answered: Counter[str] = Counter()

    def start(self, name: str, kind: str, **env: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(self.commands[kind], cwd=ROOT, env={**self.env, **env},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def run(self, kind: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A one-off command: the Procfile's line (``release``), or ``flask --app app`` and
        ``extra`` for a command an operator would run."""
        command = self.commands[kind] if kind in self.commands else ["flask", "--app", "app"]
        return subprocess.run([*command, *extra], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start_web(self, name: str) -> None:
        port = free_port()
        folder = self.root / f"prometheus-{name}"
        folder.mkdir()
        self.start(name, "web", PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(folder))
        self.web_ports[name] = port

    def wait_until_up(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.processes[name].poll() is None, self.log(name)
            try:
                answer = requests.get(f"http://127.0.0.1:{self.web_ports[name]}/healthz",
                                      headers={"Host": "donate.test"}, timeout=5)
                self.answered[name] += 1
                if answer.ok:
                    return
            except requests.RequestException:  # not listening yet, or still importing
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} did not answer:\n{self.log(name)}")

    def kill(self, name: str) -> None:
        """SIGKILL to the process and everything it started (gunicorn's workers)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"=== {name}\n{self.log(name)}" for name in self.processes)


class Response:
    """A requests answer with the Flask test client's ``get_data``, for tests.support.flow."""

    def __init__(self, answer: requests.Response):
        self.status_code, self.headers, self.answer = answer.status_code, answer.headers, answer

    def get_data(self, as_text: bool = False):
        return self.answer.text if as_text else self.answer.content


class Browser:
    """One reader's browser, sent by the "load balancer" to the web instances in turn: an
    instance that refuses the connection (killed) is skipped, as a balancer's health check
    would; answers from nginx's side, with ``Host: donate.test``."""

    def __init__(self, topology: Topology, first: int = 0):
        self.topology = topology
        self.turn = first
        self.session = requests.Session()
        self.session.headers["Host"] = "donate.test"

    def request(self, method: str, path: str, **kwargs) -> Response:
        names = list(self.topology.web_ports)
        self.turn += 1
        for i in range(len(names)):
            name = names[(self.turn + i) % len(names)]
            if self.topology.processes[name].poll() is not None:
                continue
            url = f"http://127.0.0.1:{self.topology.web_ports[name]}{path}"
            try:
                answer = self.session.request(method, url, allow_redirects=False, timeout=30,
                                              **kwargs)
            except requests.ConnectionError:
                continue
            self.topology.answered[name] += 1
            return Response(answer)
        raise AssertionError(f"no web instance answered {method} {path}")

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, data=None, headers=None) -> Response:
        return self.request("POST", path, data=data, headers=headers)

    def form(self, path: str, page: str | None = None, **fields) -> Response:
        """GET the page, take its CSRF token, POST the form like a browser."""
        html = self.get(page or path).get_data(as_text=True)
        return self.post(path, data={"csrf_token": hidden_value(html, "csrf_token"), **fields})


@pytest.fixture
def topology():
    """Everything started, and everything stopped afterwards, also when the test fails."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsfund-topology-")))
        pg = stack.enter_context(PgCluster())
        redis = stack.enter_context(RedisServer())
        smtp, inbox = stack.enter_context(smtp_server())
        # A clean environment: under faketime (a test pinned to a date) the processes keep the
        # real time, as redis-server does (libfaketime preloaded, Flask-Limiter's in-memory
        # storage's timer thread never fires and the app's commands hang at exit); what the
        # test writes or signs is dated by the processes' clock (seed, server_now).
        env = {
            "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": str(root),
            "LANG": "C.UTF-8", "DATABASE_URL": pg.create_database("topology"),
            "REDIS_URL": redis.url, "PUBLIC_URL": PUBLIC_URL, "SECRET_KEY": SECRET_KEY,
            "MAIL_URL": f"smtp://127.0.0.1:{smtp.port}", "MAIL_OUTBOX_DIR": str(root / "outbox"),
            "WEB_CONCURRENCY": "2", "WEB_TIMEOUT": "20", "WEB_GRACEFUL_TIMEOUT": "2",
            "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING",
            # The scheduler's work every few seconds rather than minutes; the daily email
            # at midnight: due as soon as the scheduler looks, once a local day.
            "SCHEDULER_TICK_SECONDS": "1", "SCHEDULE_DAILY_EMAIL_AT": "00:00",
            "SCHEDULE_PROCESS_PENDING_SECONDS": "5", "SCHEDULE_SEND_MAIL_SECONDS": "5",
            "SCHEDULE_SETTLE_FEES_SECONDS": "5", "SCHEDULE_ROLLUP_SECONDS": "5",
            "SCHEDULE_SANDBOX_RENEW_SECONDS": "30", "SCHEDULE_STRIPE_SYNC_SECONDS": "0",
            # Cheap password hashing: its cost is no part of this test.
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "8", "ARGON2_PARALLELISM": "1",
        }
        topology = Topology(root, env, pg, redis, inbox)
        stack.callback(topology.stop_all)  # first of all
        yield topology


def seed() -> None:
    """Run in a process of its own with the topology's settings: the campaign, an account,
    the day's stories and a subscriber to the daily email."""
    app = create_app({"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1})
    with app.app_context():
        make_campaign(SLUG, title="The topology appeal")
        make_account("member@example.org")
        seed_news(utcnow(), org_zone())
        confirmed_subscriber("reader@example.org")
        db.session.commit()
        db.engine.dispose()


def dispose(app) -> None:
    with app.app_context():
        db.engine.dispose()


def server_now(browser: Browser) -> int:
    """The time on the web instances' clock (their ``Date`` header)."""
    return int(parsedate_to_datetime(browser.get("/healthz").headers["Date"]).timestamp())


def give(browser: Browser, email: str, amount: str, frequency: str = "one_time") -> None:
    """The donation form, then the sandbox's payment page, as a browser."""
    page = browser.get(f"/campaigns/{SLUG}")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    data = {name: hidden_value(html, name) for name in (
        "csrf_token", "submission_key", "currency", "utm_source", "utm_medium", "utm_campaign",
        "utm_term", "utm_content")}
    data.update(amount_choice="other", other_amount=amount, frequency=frequency,
                name=email.split("@")[0].title(), email=email)
    started = browser.post(f"/campaigns/{SLUG}/give", data=data)
    assert started.status_code == 303, started.get_data(as_text=True)[:2000]
    checkout = urlsplit(started.headers["Location"]).path
    page = browser.get(checkout)
    assert page.status_code == 200, page.status_code
    paid = browser.post(checkout, data={
        "csrf_token": hidden_value(page.get_data(as_text=True), "csrf_token"),
        "name": "Card Holder", "number": "4242 4242 4242 4242", "expiry": "12 / 34",
        "cvc": "123"})
    assert paid.status_code in (302, 303), paid.get_data(as_text=True)[:2000]


def deliver(browser: Browser, app, event: dict) -> None:
    """A signed webhook, as the provider sends it (and sends again until it gets a 2xx)."""
    payload = json.dumps(event).encode()
    headers = app.extensions["payment_provider"].sign(payload, timestamp=server_now(browser))
    for _ in range(20):
        answer = browser.post("/webhooks/sandbox", data=payload,
                              headers={**headers, "Content-Type": "application/json"})
        if answer.status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"{event['type']} not taken: {answer.status_code}")


def wait_for(check, what: str, topology: Topology, timeout: float = 30) -> None:
    """Until ``check()`` (in the test app's context: a fresh session each time) is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} after {timeout} s\n{topology.logs()}")


def test_the_production_topology_survives_its_failures(topology, request):
    began = time.monotonic()
    release = topology.run("release", timeout=120)
    assert release.returncode == 0, release.stderr[-3000:]

    # What the run needs in the database, written as staff and the newsroom would have, on the
    # processes' clock.
    seeded = subprocess.run([sys.executable, "-c", f"from {__name__} import seed; seed()"],
                            cwd=ROOT, env=topology.env, capture_output=True, text=True,
                            timeout=60)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    # The test's own app on the same database: to read it, and to sign webhooks.
    app = create_app({"SQLALCHEMY_DATABASE_URI": topology.env["DATABASE_URL"],
                      "SECRET_KEY": SECRET_KEY, "PUBLIC_URL": PUBLIC_URL, "REDIS_URL": "",
                      # No limiter storage: its in-memory one's timer thread would hold this
                      # process at exit under faketime.
                      "RATELIMIT_ENABLED": False})
    # Its connections closed when the test ends, pass or fail, before PostgreSQL stops: one
    # left in its pool warned (an error) in whichever later test the garbage collector ran.
    request.addfinalizer(lambda: dispose(app))
    with app.app_context():
        stories = set(db.session.scalars(select(Article.link)))
        db.session.remove()

    topology.start_web("web1")
    topology.start_web("web2")
    topology.start("worker1", "worker")
    topology.start("worker2", "worker")
    topology.start("scheduler", "scheduler")
    for name in ("web1", "web2"):
        topology.wait_until_up(name)

    browser = Browser(topology)
    paid: dict[str, int] = {}  # donor -> amount paid (cents)

    def gift(email: str, amount: int, frequency: str = "one_time") -> None:
        give(Browser(topology, first=len(paid)), email, f"{amount / 100:.2f}", frequency)
        paid[email] = amount

    def gift_of(email: str) -> Gift:
        return db.session.scalar(select(Gift).join(Gift.supporter).where(
            Supporter.email == email))

    # Phase 1: gifts, one-time and monthly, and the account mail.
    gift("one@example.org", 2500)
    gift("monthly@example.org", 1500, "monthly")
    gift("two@example.org", 4000)
    assert browser.form("/account/signup", email="new@example.org", password=PASSWORD,
                        name="New Reader").status_code == 303
    assert browser.form("/account/signin/link",
                        email="member@example.org").status_code == 303

    # A worker killed mid-stream.
    gift("three@example.org", 3000)
    topology.kill("worker1")
    gift("four@example.org", 1200)

    # Redis stopped for 10 seconds: gifts and sign-ins go on.
    topology.redis.process.terminate()
    topology.redis.process.wait(10)
    stopped = time.monotonic()
    gift("five@example.org", 5000)
    gift("six@example.org", 700)
    assert browser.form("/account/signin", email="member@example.org",
                        password=PASSWORD).status_code == 303
    time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    topology.redis.root.mkdir(exist_ok=True)
    topology.redis.start()

    # PostgreSQL restarted under the running processes.
    topology.pg.restart()
    gift("seven@example.org", 2200)

    # The money events, Stripe-shaped and signed, sent to either instance.
    with app.app_context():
        wait_for(lambda: all(gift_of(e) is not None and gift_of(e).status is GiftStatus.PAID
                             for e in ("one@example.org", "two@example.org",
                                       "monthly@example.org")),
                 "the first gifts paid", topology)
        refunded, disputed = gift_of("one@example.org"), gift_of("two@example.org")
        refund_pi = db.session.scalar(select(Payment.payment_intent_id).where(
            Payment.gift_id == refunded.id, Payment.kind == PaymentKind.CHARGE))
        dispute_pi = db.session.scalar(select(Payment.payment_intent_id).where(
            Payment.gift_id == disputed.id, Payment.kind == PaymentKind.CHARGE))
        plan = db.session.get(RecurringPlan, gift_of("monthly@example.org").plan_id)
        monthly_gift = gift_of("monthly@example.org").public_id
        subscription = plan.provider_subscription_id
        db.session.remove()
        provider = app.extensions["payment_provider"]
        now = server_now(browser)
        refund = provider.refund_event(
            RefundResult(id="re_sbx_topology1", amount=1000, status="succeeded", created=now),
            payment_intent_id=refund_pi, charge_id=None, now=now)
        dispute = so.event("charge.dispute.created", so.dispute(
            dispute_id="du_topology1", amount=4000, fee=1500,
            charge_id=f"ch_sbx_{dispute_pi.removeprefix('pi_sbx_')}", intent=dispute_pi),
            event_id="evt_topology_dispute", created=now)
        failed = so.event("invoice.payment_failed", so.invoice(
            invoice_id=f"in_sbx_{subscription.removeprefix('sub_sbx_')}_2",
            subscription=subscription, gift=monthly_gift, amount=1500,
            billing_reason="subscription_cycle", status="open", attempt_count=1,
            next_payment_attempt=now + 3 * 86400), event_id="evt_topology_failed", created=now)
        for event in (refund, dispute, failed):
            deliver(browser, app, event)

    # One web instance gone for good; the other takes everything.
    topology.kill("web1")
    gift("eight@example.org", 900)

    # The queue drained, then the sweep, as an operator (or the scheduler) runs it: the event
    # the killed worker was applying, and those whose jobs Redis lost, are applied by it.
    queue = Redis.from_url(topology.redis.url)
    with app.app_context():
        wait_for(lambda: not queue.llen(f"rq:queue:{app.config['JOBS_QUEUE']}"),
                 "jobs still queued", topology)
    queue.close()
    sweep = topology.run("flask", "payments", "process-pending", "--older-than", "0")
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    mail = topology.run("flask", "mail", "send-pending")
    assert mail.returncode == 0, mail.stdout + mail.stderr

    with app.app_context():
        # Every gift paid once, the ledger equal to what was paid.
        gifts = db.session.scalars(select(Gift)).all()
        assert len(gifts) == len(paid)
        charges = db.session.execute(select(Payment.gift_id, Payment.amount).where(
            Payment.kind == PaymentKind.CHARGE)).all()
        assert Counter(g for g, _ in charges) == Counter(g.id for g in gifts), charges
        by_email = {g.supporter.email: g for g in gifts}
        assert {email: g.amount for email, g in by_email.items()} == paid
        assert sum(a for _, a in charges) == sum(paid.values())
        assert {(k, a) for k, a in db.session.execute(select(Payment.kind, Payment.amount).where(
            Payment.kind != PaymentKind.CHARGE))} == {(PaymentKind.REFUND, 1000),
                                                        (PaymentKind.DISPUTE, 4000)}
        statuses = {email: g.status for email, g in by_email.items()}
        assert statuses == {**{e: GiftStatus.PAID for e in paid},
                            "one@example.org": GiftStatus.PARTIALLY_REFUNDED,
                            "two@example.org": GiftStatus.DISPUTED}
        # Receipt numbers unique and gap-free.
        numbers = db.session.execute(select(Receipt.year, Receipt.sequence)).all()
        assert len(numbers) == len(set(numbers)) >= len(paid)
        for year in {y for y, _ in numbers}:
            sequence = sorted(s for y, s in numbers if y == year)
            assert sequence == list(range(1, len(sequence) + 1)), sequence
        # No event left unapplied after the sweep.
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent).where(
            ProviderEvent.processed_at.is_(None))) == 0
        events_stored = db.session.scalar(select(func.count()).select_from(ProviderEvent))
        db.session.remove()

    # Exactly one email per purpose and recipient; every link on PUBLIC_URL.
    messages = topology.inbox.parsed()
    sent = Counter((m["To"], m["Subject"]) for m in messages)
    assert [k for k, n in sent.items() if n > 1] == [], sent
    recipients = {m["To"] for m in messages}
    assert set(paid) | {"new@example.org", "member@example.org",
                        "reader@example.org"} <= recipients, sent
    for message in messages:
        ours = [link for link in links_of(message) if link not in stories
                and not link.startswith("https://levantwire.example/")]
        assert all(link.startswith(f"{PUBLIC_URL}/") for link in ours), (message["Subject"],
                                                                         ours)

    # The year's statements, as finance sends them (the year has not ended: --force), to each
    # donor with a receipt still standing (the disputed gift's was voided); a rerun sends none.
    [year] = {y for y, _ in numbers}
    for _ in range(2):
        statements = topology.run("flask", "finance", "statements", "--year", str(year),
                                  "--force", "--workers", "1", timeout=90)
        assert statements.returncode == 0, statements.stdout + statements.stderr
    messages = topology.inbox.parsed()
    statement_mails = [m for m in messages if m.get_content_type() == "multipart/mixed"
                       and any(p.get_content_type() == "application/pdf"
                               for p in m.iter_attachments())]
    receipted = sorted(set(paid) - {"two@example.org"})
    assert sorted(m["To"] for m in statement_mails) == receipted, \
        [(m["To"], m["Subject"]) for m in statement_mails]

    # /metrics, from the instance still up: what the test did, and what that instance answered.
    web = Browser(topology)
    answered = topology.answered["web2"]
    metrics = web.get("/metrics")
    assert metrics.status_code == 200
    figures = samples(metrics.get_data(as_text=True))
    assert {status.value: value(figures, "newsfund_gifts", status=status.value)
            for status in GiftStatus} == {**{status.value: 0 for status in GiftStatus},
                                          "paid": len(paid) - 2, "partially_refunded": 1,
                                          "disputed": 1}
    assert value(figures, "newsfund_webhook_events_received_total",
                 provider="sandbox") == events_stored
    for state in ("waiting", "parked", "failed"):
        assert value(figures, "newsfund_webhook_events", provider="sandbox", state=state) == 0
    assert value(figures, "newsfund_webhook_oldest_waiting_event_age_seconds") == 0
    assert value(figures, "newsfund_mail_queued") == 0
    # Every message the SMTP server took, the daily email's counted apart.
    daily = [m for m in messages if m["Subject"].startswith("Your daily news")]
    assert [m["To"] for m in daily] == ["reader@example.org"]
    assert value(figures, "newsfund_mail_sent_total") == len(messages) - len(daily)
    assert value(figures, "newsfund_digest_sends", state="sent") == len(daily)
    assert value(figures, "newsfund_statements_sent", year=str(year),
                 kind="first") == len(receipted)
    assert sum(v for (name, _), v in figures.items()
               if name == "newsfund_http_requests_total") == answered

    elapsed = time.monotonic() - began
    assert elapsed < BUDGET_SECONDS, elapsed
    print(f"topology run: {elapsed:.1f} s")
