"""Which ``flask`` commands take SQLite's write lock up front (``app.db.writing_command``), and
what that buys: two runs of a writing command at once both succeed and do the work once,
instead of one failing with "database is locked" when its transaction turns from reading to
writing after the other wrote."""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import click
import pytest
from flask import g
from flask.cli import AppGroup
from sqlalchemy import func, select, text

from app.db import expect_writes, utcnow, writing_command
from app.extensions import db
from app.giving.models import Gift, GiftStatus
from app.giving.services import GivingRules, start_gift
from app.mail import OutboundEmail, deliver_batch, queue_email, transport_from_config
from app.payments.models import Payment, ProviderEvent
from tests.conftest import migrated_url
from tests.factories import gift_request, make_campaign
from tests.support import stripe_objects as so
from tests.support.concurrency import run_concurrently, sqlite_write_lock

#: Marked with ``@writing_command``: its transactions take the write lock up front.
WRITES = "writes"
#: Not marked: it only reads (a long export holding the write lock would stall every gift).
READS = "reads"
#: Not marked: it writes only in application contexts it opens itself, each marked there
#: (``app.jobs.AppWorker`` for each job; ``app.schedule`` for a task it runs itself).
OWN_CONTEXTS = "own contexts"
#: Flask-Migrate's: Alembic's transaction, run before the app serves (``make run``, the
#: Procfile's ``release``), not marked by the app.
ALEMBIC = "alembic"

#: Every command the app registers. A new command fails ``test_every_command_is_declared``
#: until it is added here, and its marking must match.
COMMANDS = {
    "finance export": READS,
    "finance import": WRITES,  # a dry run too: it flushes every row, then rolls back
    "finance offline-gift correct": WRITES,
    "finance offline-gift record": WRITES,
    "finance offline-gift reverse": WRITES,
    "finance receipt": READS,
    "finance reconcile": READS,
    "finance statements": WRITES,  # its worker processes only render PDFs: no database
    "jobs scheduler": OWN_CONTEXTS,
    "jobs worker": OWN_CONTEXTS,
    "mail send-pending": WRITES,
    "members list": READS,
    "news categories add": WRITES,
    "news categories list": READS,
    "news categories remove": WRITES,
    "news ingest": WRITES,
    "news send-digest": WRITES,
    "payments process-pending": WRITES,
    "payments settle-fees": WRITES,
    "payments sync": WRITES,
    "sandbox renew": WRITES,
    "seed-demo": WRITES,
    "staff rollup": WRITES,
    "supporters import": WRITES,  # a dry run too, as finance import's
    "users create": WRITES,
    "users list": READS,
    "users revoke": WRITES,
    **{f"db {name}": ALEMBIC for name in (
        "branches", "check", "current", "downgrade", "edit", "heads", "history", "init",
        "list-templates", "merge", "migrate", "revision", "show", "stamp", "upgrade")},
}


def commands(group: click.Group, path: str = ""):
    """(``"finance offline-gift record"``, its command) for every command under ``group``."""
    for name, command in group.commands.items():
        here = f"{path} {name}".strip()
        if isinstance(command, click.Group):
            yield from commands(command, here)
        else:
            yield here, command


def marked(command: click.Command) -> bool:
    return getattr(command.callback, "writes", False)


def test_every_command_is_declared_and_marked_as_declared(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'unused.db'}")
    found = dict(commands(app.cli))
    assert sorted(found.keys() - COMMANDS.keys()) == [], \
        "new command: declare it in COMMANDS (and mark it @writing_command if it writes)"
    assert sorted(COMMANDS.keys() - found.keys()) == [], "no such command: drop it from COMMANDS"
    assert {path: marked(c) for path, c in found.items()} == {
        path: kind == WRITES for path, kind in COMMANDS.items()}
    assert {path for path, c in found.items() if c.callback.__module__ == "flask_migrate.cli"} \
        == {path for path, kind in COMMANDS.items() if kind == ALEMBIC}


def test_a_writing_command_takes_the_write_lock_up_front_and_only_for_its_run(make_app,
                                                                             tmp_path):
    path = tmp_path / "lock.db"
    app = make_app(f"sqlite:///{path}")
    probe_cli = AppGroup("probe")

    def probe() -> None:
        """Read, then say whether another connection could take the write lock meanwhile."""
        db.session.execute(text("SELECT 1"))
        click.echo(sqlite_write_lock(path))
        db.session.rollback()

    probe_cli.command("writes")(writing_command(probe))
    probe_cli.command("reads")(probe)
    app.cli.add_command(probe_cli)
    runner = app.test_cli_runner()
    with app.app_context():  # the runner runs the command in it, as the suite's tests do
        assert runner.invoke(args=["probe", "writes"]).output == "database is locked\n"
        assert not g.get("expects_writes")
        assert runner.invoke(args=["probe", "reads"]).output == "free\n"


# Two runs at once, each thread through its own connection to a committed database. On SQLite
# the marking is what they test: unmarked, one run fails with "database is locked" (and mail
# goes out twice meanwhile). On PostgreSQL the marking does nothing; the rows' locks do it.

RUNS = 2


@pytest.fixture(params=["sqlite", "postgresql"])
def race_app(request, make_app):
    return make_app(migrated_url(request, request.param, f"cli_race_{request.param}"))


def run_twice_at_once(app, path: str, *options: str) -> list[BaseException]:
    """Run the command at ``path`` (``"mail send-pending"``: the one the app registers) with
    ``options`` in RUNS threads at once, each in an application context of its own; what they
    raised, a failing exit too."""
    command = dict(commands(app.cli))[path]
    exits: list[BaseException] = []

    def run() -> None:
        try:
            command.main(args=list(options), prog_name=f"flask {path}", standalone_mode=False)
        except SystemExit as exc:  # a command's failure (exit 1) is no Exception
            exits.append(exc)

    return run_concurrently(app, run, threads=RUNS, timeout=60) + exits


def outbox_recipients(app) -> list[str]:
    """Who the messages in the app's outbox folder went to, sorted."""
    return sorted(message_from_bytes(p.read_bytes(), policy=policy.default)["To"]
                  for p in Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))


MESSAGES = 40


def queue_messages(app) -> list[str]:
    """MESSAGES messages queued and committed, not delivered; their recipients."""
    readers = [f"reader{i}@example.org" for i in range(MESSAGES)]
    with app.app_context():
        for i, reader in enumerate(readers):
            queue_email(to=reader, subject="Hello", template="account/email_changed",
                        dedupe_key=f"race:{i}", new_email="dana@example.org",
                        deliver_after_commit=False)
        db.session.commit()
        db.session.remove()
    return readers


def test_mail_send_pending_twice_at_once_sends_each_message_once(race_app):
    app = race_app
    readers = queue_messages(app)

    assert run_twice_at_once(app, "mail send-pending") == []
    assert outbox_recipients(app) == sorted(readers)
    with app.app_context():
        assert db.session.execute(select(func.count(), func.sum(OutboundEmail.attempts))
                                  .where(OutboundEmail.sent_at.is_not(None))).one() \
            == (MESSAGES, MESSAGES)
        db.session.remove()


def test_a_delivery_batch_beside_send_pending_sends_each_message_once(race_app):
    """What a job's ``deliver_batch`` (statements, the daily email) and a ``flask mail
    send-pending`` run at the same time share: each message goes out once."""
    app = race_app
    readers = queue_messages(app)
    with app.app_context():
        ids = db.session.scalars(select(OutboundEmail.id)).all()
        db.session.remove()
    command = dict(commands(app.cli))["mail send-pending"]
    turn = iter(range(RUNS))

    def run() -> None:
        if next(turn) == 0:
            expect_writes()  # as the job running it does
            deliver_batch(ids, transport=transport_from_config(app.config))
        else:
            command.main(args=[], prog_name="flask mail send-pending", standalone_mode=False)

    assert run_concurrently(app, run, threads=RUNS, timeout=60) == []
    assert outbox_recipients(app) == sorted(readers)


EVENTS = 12


def test_process_pending_twice_at_once_applies_each_event_once(race_app):
    app = race_app
    with app.app_context():
        campaign = make_campaign("twenty")
        rules = GivingRules.from_config(app.config)
        gifts = [start_gift(campaign, gift_request(email=f"donor{i}@example.org",
                                                   currency=campaign.currency),
                            rules=rules, now=utcnow()) for i in range(EVENTS)]
        db.session.flush()
        for i, gift in enumerate(gifts):  # paid, and the job applying it lost
            evt = so.event("checkout.session.completed", so.checkout_session(
                session_id=f"cs_race_{i}", gift=gift.public_id, amount=gift.total,
                payment_intent=f"pi_race_{i}", email=f"donor{i}@example.org"))
            db.session.add(ProviderEvent(provider="sandbox", event_id=evt["id"],
                                         type=evt["type"], payload=json.dumps(evt),
                                         received_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        db.session.remove()

    assert run_twice_at_once(app, "payments process-pending", "--older-than", "0") == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(
            ProviderEvent.processed_at.is_(None))) == 0
        assert db.session.scalar(select(func.count(Payment.id))) == EVENTS
        assert set(db.session.scalars(select(Gift.status))) == {GiftStatus.PAID}
        db.session.remove()
    # Each donor thanked once, with their receipt.
    assert outbox_recipients(app) == sorted(f"donor{i}@example.org" for i in range(EVENTS))


class WatchingTransport:
    """The app's transport, asking at each message it is handed whether a gift's POST could
    write to the SQLite file at ``path`` right then (:func:`sqlite_write_lock`)."""

    def __init__(self, transport, path: str) -> None:
        self.transport, self.path, self.found = transport, path, []
        self.sender = transport.sender

    def send(self, recipient: str, message: bytes) -> None:
        self.found.append(sqlite_write_lock(self.path))
        self.transport.send(recipient, message)

    def connection(self):
        """One "connection" for a batch: the same watching ``send``."""
        return nullcontext(self)


def test_no_database_lock_is_held_while_the_mail_server_takes_the_messages(request, make_app):
    """A batch (statements) and a single message (a job, ``flask mail send-pending``) are
    claimed in a short transaction of their own, then handed over: on SQLite every gift posted
    meanwhile would otherwise wait for the write lock, and fail after the busy timeout."""
    from sqlalchemy import make_url

    from app.mail import send_email

    url = migrated_url(request, "sqlite", "mail_lock")
    app = make_app(url)
    readers = queue_messages(app)
    with app.app_context():
        transport = WatchingTransport(transport_from_config(app.config),
                                      make_url(url).database)
        ids = db.session.scalars(select(OutboundEmail.id).order_by(OutboundEmail.id)).all()
        expect_writes()  # as the job and the command are marked
        assert deliver_batch(ids[:-1], transport=transport) == (MESSAGES - 1, 0)
        assert send_email(ids[-1], transport) is True
        assert send_email(ids[-1], transport) is False  # sent: nothing to hand over
        db.session.remove()
    assert transport.found == ["free"] * MESSAGES
    assert outbox_recipients(app) == sorted(readers)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_message_another_sender_has_in_hand_is_left_to_it_until_its_claim_expires(
        request, make_app, backend):
    from app.mail import CLAIM_EXPIRES, deliver_pending

    app = make_app(migrated_url(request, backend, f"mail_claims_{backend}"))
    readers = queue_messages(app)[:3]
    with app.app_context():
        ids = db.session.scalars(select(OutboundEmail.id).order_by(OutboundEmail.id)).all()
        now = utcnow()
        # The first in hand right now, the second claimed by a sender that died long ago.
        db.session.get(OutboundEmail, ids[0]).claimed_at = now
        db.session.get(OutboundEmail, ids[1]).claimed_at = now - CLAIM_EXPIRES - timedelta(
            seconds=1)
        db.session.commit()
        transport = transport_from_config(app.config)
        assert deliver_batch(ids[:3], transport=transport) == (2, 0)
        rows = db.session.scalars(select(OutboundEmail).where(OutboundEmail.id.in_(ids[:3]))
                                  .order_by(OutboundEmail.id)).all()
        assert [(r.sent_at is None, r.claimed_at is None, r.attempts) for r in rows] == [
            (True, False, 0), (False, True, 1), (False, True, 1)]
        sent, failed = deliver_pending(transport=transport)
        assert (sent, failed) == (MESSAGES - 3, 0)  # the first still left to its sender
        db.session.remove()
    delivered = outbox_recipients(app)
    assert set(readers[1:]) <= set(delivered)
    assert readers[0] not in delivered


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_sender_killed_mid_send_leaves_its_message_to_the_next_one_at_once(
        request, make_app, backend):
    """``flask mail send-pending`` killed while a mail server that never answers holds its
    first message (a worker killed mid-job): the next sender on the machine takes that message
    at once, not after CLAIM_EXPIRES; a claim by a sender on another machine still holds."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from app.mail import deliver_pending

    url = migrated_url(request, backend, f"mail_killed_{backend}")
    app = make_app(url)
    readers = queue_messages(app)
    with app.app_context():
        ids = db.session.scalars(select(OutboundEmail.id).order_by(OutboundEmail.id)).all()
        elsewhere = db.session.get(OutboundEmail, ids[-1])
        elsewhere.claimed_at, elsewhere.claimed_by = utcnow(), "another-machine:4242"
        db.session.commit()
        db.session.remove()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, says nothing
        sender = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "mail", "send-pending"],
            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env={
                "PATH": os.environ["PATH"], "DATABASE_URL": url, "SECRET_KEY": "x" * 32,
                "MAIL_URL": f"smtp://127.0.0.1:{silent.getsockname()[1]}"})
        try:
            with app.app_context():
                deadline = time.monotonic() + 30
                while db.session.get(OutboundEmail, ids[0]).claimed_by is None:
                    assert sender.poll() is None, sender.stdout.read()
                    assert time.monotonic() < deadline, "the sender claimed nothing"
                    db.session.rollback()
                    time.sleep(0.05)
                db.session.remove()
        finally:
            sender.send_signal(signal.SIGKILL)
            sender.wait(10)
            sender.stdout.close()
    with app.app_context():
        assert db.session.get(OutboundEmail, ids[0]).claimed_by.endswith(f":{sender.pid}")
        db.session.remove()
        assert deliver_pending(transport=transport_from_config(app.config)) == (
            MESSAGES - 1, 0)
        db.session.remove()
    assert outbox_recipients(app) == sorted(readers[:-1])
