"""Jobs on a real Redis through RQ (``REDIS_URL``): a webhook is stored and acknowledged at once,
and a worker applies it, retrying an event that must wait for another."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from flask import current_app
from psycopg import pq
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from app import jobs
from app.campaigns.models import Campaign
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Dedication, Gift, GiftStatus
from app.giving.services import GivingRules, start_gift
from app.mail import OutboundEmail, deliver_emails
from app.payments import events
from app.payments.events import (
    apply_pending_events,
    event_settings,
    process_event_job,
    process_events_job,
)
from app.payments.models import Payment, PaymentKind, ProviderEvent
from app.payments.providers import current_provider
from tests.conftest import migrated_url
from tests.factories import gift_request, make_campaign
from tests.support import stripe_objects as so
from tests.support.flow import submit_gift
from tests.support.jobs import work
from tests.support.stripe import (
    count,
    deliver,
    one_time_scenario,
    reset_ledger,
    serve_charge,
    stripe_config,
)


@pytest.fixture
def queue_app(make_app, database_url, app, httpserver, redis_url):
    queue_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                         REDIS_URL=redis_url, JOBS_RETRY_INTERVALS=[0] * 6)
    with queue_app.app_context():
        make_campaign("twenty")
        yield queue_app


@pytest.fixture
def client(queue_app):
    return queue_app.test_client()


@pytest.fixture
def queue(queue_app) -> Queue:
    return queue_app.extensions["jobs"].queue


@pytest.fixture
def queued(queue, monkeypatch) -> list[str]:
    """The functions put on the queue from here on, in order."""
    names = []
    enqueue = queue.enqueue

    def recording(func, *args, **kwargs):
        names.append(func.__qualname__)
        return enqueue(func, *args, **kwargs)

    monkeypatch.setattr(queue, "enqueue", recording)
    return names


def test_a_webhook_is_stored_and_acknowledged_and_the_worker_applies_it(
        queue_app, client, gift, httpserver, queue, queued, outbox):
    serve_charge(httpserver)
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    answer = deliver(client, evt)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": True, "duplicate": False}
    # Stored raw, not applied yet: one job waits on the queue.
    stored = db.session.scalar(select(ProviderEvent))
    assert (stored.type, stored.processed_at) == ("checkout.session.completed", None)
    assert count(Payment) == 0 and queue.count == 1
    assert httpserver.log == []
    # The same delivery again is a duplicate and queues nothing.
    assert deliver(client, evt).get_json()["duplicate"] is True
    assert queue.count == 1

    work(queue_app)

    # One job: the receipt's mail and the fee it queued ran in the worker after its commit.
    assert queued == ["process_events_job"]
    charge = db.session.scalar(select(Payment))
    assert (charge.kind, charge.amount, charge.fee, charge.net) == (PaymentKind.CHARGE, 5000,
                                                                   175, 4825)
    assert db.session.get(Gift, gift.id).status is GiftStatus.PAID
    assert db.session.scalar(select(ProviderEvent.processed_at)) is not None
    assert db.session.scalar(select(Receipt.status)) is ReceiptStatus.ISSUED
    [receipt_mail] = outbox()
    assert receipt_mail["Subject"].startswith("Thank you for your gift to")
    assert db.session.scalar(select(OutboundEmail.sent_at)) is not None
    assert queue.count == 0 and FailedJobRegistry(queue=queue).count == 0
    # Run again: nothing to do, nothing doubled.
    assert process_event_job(stored.id) is False
    assert count(Payment) == 1 and len(outbox()) == 1


def pending_gifts(count: int) -> list[Gift]:
    """``count`` one-time gifts left for Stripe's checkout, committed."""
    campaign = db.session.scalar(select(Campaign))
    rules = GivingRules.from_config(current_app.config)
    gifts = [start_gift(campaign, gift_request(email=f"donor{n}@example.org"), rules=rules,
                        now=utcnow()) for n in range(count)]
    db.session.commit()
    return gifts


def paid_events(httpserver, gifts: list[Gift]) -> list[dict]:
    """A ``payment_intent.succeeded`` for each gift, its own intent served with its charge."""
    events = []
    for gift in gifts:
        n = gift.id
        intent = f"pi_batch_{n}"
        charge = {**so.charge(charge_id=f"ch_batch_{n}", intent=intent, amount=gift.total),
                  "balance_transaction": so.balance_transaction(amount=gift.total,
                                                                txn_id=f"txn_batch_{n}")}
        httpserver.expect_request(f"/v1/payment_intents/{intent}", method="GET")\
            .respond_with_json({**so.payment_intent(intent_id=intent, gift=gift.public_id,
                                                    amount=gift.total), "latest_charge": charge})
        events.append(so.event("payment_intent.succeeded", so.payment_intent(
            intent_id=intent, gift=gift.public_id, amount=gift.total, charge=charge["id"])))
    return events


def test_a_burst_of_webhooks_is_one_job_that_applies_them_in_one_transaction(
        queue_app, client, httpserver, queue, queued, outbox):
    gifts = pending_gifts(3)
    stranger = so.event("customer.created", {"id": "cus_other", "object": "customer"})
    for evt in [*paid_events(httpserver, gifts), stranger]:
        assert deliver(client, evt).status_code == 200
    # One job waits, however many events were stored.
    assert queue.count == 1 and count(ProviderEvent) == 4

    work(queue_app)

    assert queued == ["process_events_job"]
    assert [db.session.get(Gift, gift.id).status for gift in gifts] == [GiftStatus.PAID] * 3
    assert sorted(db.session.scalars(select(Receipt.sequence))) == [1, 2, 3]
    assert count(Payment) == 3 and None not in db.session.scalars(select(Payment.fee)).all()
    assert len(outbox()) == 3 and db.session.scalar(select(func.count()).where(
        OutboundEmail.sent_at.is_(None))) == 0
    # One transaction stamped them all (one UPDATE per note: the stranger's says why).
    stamped = db.session.execute(select(ProviderEvent.processed_at, ProviderEvent.note)).all()
    assert len({at for at, _ in stamped}) == 2 and None not in {at for at, _ in stamped}
    assert {note for _, note in stamped} == {None, "event type not handled"}
    assert len(httpserver.log) == 3  # one API call per payment, asked together
    assert FailedJobRegistry(queue=queue).count == 0


def test_a_webhook_for_the_worker_takes_one_round_trip_to_postgresql(
        request, make_app, redis_url, httpserver, tmp_path):
    """Stored for a worker, the event is its transaction's one statement: on PostgreSQL it
    commits by itself (no ``BEGIN`` and ``COMMIT`` round trips), and the connection, used a
    moment ago, is not pinged first. What goes over the wire, as libpq traces it."""
    app = make_app(migrated_url(request, "postgresql", "wire"),
                   **stripe_config(httpserver.url_for("/").rstrip("/")), REDIS_URL=redis_url)
    with app.app_context():
        make_campaign("twenty")
        first, second = paid_events(httpserver, pending_gifts(2))
        engine = db.engine
    client = app.test_client()
    assert deliver(client, first).status_code == 200  # a connection in the pool now
    wire = tmp_path / "wire.txt"

    def trace(dbapi_connection, record, proxy):
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def untrace(dbapi_connection, record):
        dbapi_connection.pgconn.untrace()

    with wire.open("w") as out:
        sa_event.listen(engine, "checkout", trace)
        sa_event.listen(engine, "checkin", untrace)
        try:
            answer = deliver(client, second)
        finally:
            sa_event.remove(engine, "checkout", trace)
            sa_event.remove(engine, "checkin", untrace)
    assert answer.get_json() == {"received": True, "duplicate": False}

    lines = wire.read_text().splitlines()
    sent = [line.split("\t") for line in lines if line.startswith("F\t")]
    assert [fields[2] for fields in sent] == ["Parse", "Bind", "Describe", "Execute", "Sync"]
    assert "INSERT INTO provider_event" in sent[0][3]
    # One round trip, the server idle after it: no transaction was left open.
    assert [line for line in lines if "ReadyForQuery" in line] == ["B\t5\tReadyForQuery\t I"]
    with app.app_context():
        assert count(ProviderEvent) == 2
    assert app.extensions["jobs"].queue.count == 1  # the one job for both, waiting


def test_a_batchs_first_payments_are_recorded_together_and_the_rest_one_by_one(
        queue_app, client, httpserver, queue, outbox):
    """A batch's ``payment_intent.succeeded`` events that pay a gift's first money are
    recorded set-based (``giving.record_first_payments``); any other case among them is
    left to the handler, one by one, with the same outcome as alone."""
    plain = pending_gifts(4)
    campaign = db.session.scalar(select(Campaign))
    honour = start_gift(campaign, gift_request(
        email="ruth@example.org", dedication=Dedication.HONOUR, dedication_name="Miriam",
        dedication_email="miriam@example.org"), rules=GivingRules.from_config(
            current_app.config), now=utcnow())
    mismatch, paid_before, twice = pending_gifts(3)
    db.session.commit()
    gifts = [*plain, honour, mismatch, paid_before, twice]
    events_ = paid_events(httpserver, gifts)
    # Paid already: the same payment recorded by an earlier delivery of its own.
    assert deliver(client, events_[6]).status_code == 200
    work(queue_app)
    first_receipt = db.session.scalar(select(Receipt).where(Receipt.gift_id == paid_before.id))
    wrong = dict(events_[5], id="evt_wrong_amount")
    wrong["data"] = {"object": dict(events_[5]["data"]["object"], amount_received=1)}
    batch = [*reversed(events_[:4]), events_[4], wrong, dict(events_[6], id="evt_again"),
             events_[7], dict(events_[7], id="evt_twice"),
             so.event("payment_intent.succeeded", so.payment_intent(
                 intent_id="pi_stranger", gift="not-a-gift-here", amount=5000))]
    for evt in batch:
        assert deliver(client, evt).status_code == 200

    work(queue_app)

    status = {gift.public_id: db.session.get(Gift, gift.id).status for gift in gifts}
    assert [status[gift.public_id] for gift in gifts] == [GiftStatus.PAID] * 5 + [
        GiftStatus.PENDING, GiftStatus.PAID, GiftStatus.PAID]
    # One charge per paid gift, its fee settled from the payment intent asked beforehand.
    charges = db.session.execute(select(Payment.gift_id, Payment.fee, Payment.card_last4)).all()
    assert sorted(gift_id for gift_id, _, _ in charges) == sorted(
        gift.id for gift in gifts if gift is not mismatch)
    assert None not in {fee for _, fee, _ in charges}
    # Receipt numbers without a gap, in the order the events came; the first one kept.
    receipts = db.session.execute(select(Receipt.gift_id, Receipt.sequence)
                                  .order_by(Receipt.sequence)).all()
    assert [sequence for _, sequence in receipts] == list(range(1, 8))
    assert [gift_id for gift_id, _ in receipts] == [
        paid_before.id, *(gift.id for gift in reversed(plain)), honour.id, twice.id]
    assert db.session.get(Receipt, first_receipt.id).status is ReceiptStatus.ISSUED
    # A receipt mail per paid gift, once each, and the dedication's note.
    keys = db.session.execute(select(OutboundEmail.dedupe_key, OutboundEmail.sent_at)).all()
    assert sorted(key for key, _ in keys) == sorted(
        [*(f"receipt:{gift.id}" for gift in gifts if gift is not mismatch),
         f"dedication:{honour.id}"])
    assert None not in {sent for _, sent in keys} and len(outbox()) == 8
    notes = dict(db.session.execute(select(ProviderEvent.event_id, ProviderEvent.note)).all())
    assert "expects" in notes["evt_wrong_amount"] and notes["evt_twice"] is None
    assert notes[batch[-1]["id"]].startswith("not ours: no gift")
    assert None not in db.session.scalars(select(ProviderEvent.processed_at)).all()
    assert FailedJobRegistry(queue=queue).count == 0


def test_a_batch_of_first_payments_takes_a_few_statements_not_a_few_per_event(
        queue_app, client, httpserver):
    """Set-based: 30 gifts paid in one batch cost as many statements as 3."""
    statements = []

    def counted(gifts: int) -> int:
        for evt in paid_events(httpserver, pending_gifts(gifts)):
            assert deliver(client, evt).status_code == 200
        statements.clear()
        assert apply_pending_events(current_provider(),
                                    settings=event_settings(current_app.config)) == gifts
        return len(statements)

    def count_statement(conn, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(Engine, "before_cursor_execute", count_statement)
    try:
        few, many = counted(3), counted(30)
    finally:
        sa_event.remove(Engine, "before_cursor_execute", count_statement)
    assert count(Receipt) == 33 and count(OutboundEmail) == 33
    assert many <= few, (few, many)  # the year's receipt counter was created by the first


def test_outside_a_worker_one_batch_is_applied_not_the_whole_backlog(
        queue_app, client, httpserver):
    """Run in a web process (Redis could not take the job), the job applies one batch: a
    request does not take on a backlog; a worker goes on until none is left."""
    for evt in paid_events(httpserver, pending_gifts(3)):
        assert deliver(client, evt).status_code == 200
    provider, settings = current_provider(), event_settings(current_app.config)
    assert apply_pending_events(provider, settings=settings, size=2, batches=1) == 2
    assert apply_pending_events(provider, settings=settings, size=2) == 1
    assert count(Payment) == 3


def test_an_event_that_breaks_its_batch_holds_back_no_other(
        queue_app, client, httpserver, queue, monkeypatch):
    gifts = pending_gifts(2)
    paid = paid_events(httpserver, gifts)
    broken = so.event("charge.dispute.created", so.dispute(amount=3000))
    for evt in (paid[0], broken, paid[1]):
        assert deliver(client, evt).status_code == 200

    def breaks(provider, obj, zone):
        raise RuntimeError("the handler broke")

    monkeypatch.setitem(events.HANDLERS, "charge.dispute.created", breaks)
    work(queue_app)

    # The batch was rolled back and its events applied one by one: both payments went
    # through; the broken one was tried, counted, and retried in a job of its own until its
    # retries ran out (in these tests, at once).
    assert [db.session.get(Gift, gift.id).status for gift in gifts] == [GiftStatus.PAID] * 2
    assert sorted(db.session.scalars(select(Receipt.sequence))) == [1, 2]
    row = db.session.scalar(select(ProviderEvent).where(ProviderEvent.event_id == broken["id"]))
    retries = len(queue_app.config["JOBS_RETRY_INTERVALS"])
    assert (row.processed_at, row.attempts, row.last_error) == (
        None, 1 + retries, "RuntimeError: the handler broke")
    [job_id] = FailedJobRegistry(queue=queue).get_job_ids()
    assert queue.fetch_job(job_id).func_name == "app.payments.events.process_event_job"


def test_an_event_that_must_wait_leaves_its_batch_for_a_job_of_its_own(
        make_app, database_url, queue_app, gift, httpserver):
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)])
    patient = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                       REDIS_URL=queue_app.config["REDIS_URL"], JOBS_RETRY_INTERVALS=[30, 300])
    with patient.app_context():
        refund = so.event("charge.refunded", so.charge(amount=5000, refunded=2000))
        stranger = so.event("customer.created", {"id": "cus_other", "object": "customer"})
        for evt in (refund, stranger):
            assert deliver(patient.test_client(), evt).status_code == 200
        work(patient)
        queue = patient.extensions["jobs"].queue
        # The other event applied; the refund counted once, and its own job scheduled to run
        # in 30 s (the first interval), with the one retry left.
        assert db.session.scalar(select(ProviderEvent.processed_at).where(
            ProviderEvent.event_id == stranger["id"])) is not None
        row = db.session.scalar(select(ProviderEvent).where(
            ProviderEvent.event_id == refund["id"]))
        assert (row.processed_at, row.attempts) == (None, 1)
        assert row.note.startswith("whether pi_test_1 is ours")  # what it waits for
        scheduled = ScheduledJobRegistry(queue=queue)
        [job_id] = scheduled.get_job_ids()
        job = queue.fetch_job(job_id)
        assert (job.func_name, job.args, job.retries_left) == (
            "app.payments.events.process_event_job", (row.id,), 1)
        assert FailedJobRegistry(queue=queue).count == 0 and count(Payment) == 0


def test_a_follow_up_that_fails_in_the_worker_goes_to_the_queue_for_its_retries(
        queue_app, client, gift, httpserver, queue, queued, outbox):
    httpserver.expect_request("/v1/payment_intents/pi_test_1").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is having a bad day"}}, status=500)
    evt = so.event("checkout.session.completed",
                   so.checkout_session(gift=gift.public_id, amount=5000))
    assert deliver(client, evt).status_code == 200
    work(queue_app)

    # The event and its receipt are done; the fee's lookup failed, was queued, and retried
    # (at once, in these tests) until its retries ran out.
    assert db.session.get(Gift, gift.id).status is GiftStatus.PAID
    assert len(outbox()) == 1
    assert db.session.scalar(select(Payment.fee)) is None
    failed = FailedJobRegistry(queue=queue)
    [job_id] = failed.get_job_ids()
    assert queue.fetch_job(job_id).func_name == "app.payments.events.settle_charge_job"
    assert queued == ["process_events_job", "settle_charge_job"]
    # Asked while the event was applied (for the receipt's card), tried again in the worker
    # after the event's commit, then as a queued job, then its retries.
    assert len(httpserver.log) == 3 + len(queue_app.config["JOBS_RETRY_INTERVALS"])


def test_events_in_any_order_converge_through_the_queues_retries(queue_app, client, gift,
                                                                 httpserver, queue):
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)])
    g = gift.public_id
    events = one_time_scenario(g)
    shuffled = random.Random(6)
    orders = [events[::-1]] + [shuffled.sample(events, len(events)) for _ in range(4)]
    for order in orders:
        reset_ledger(gift)
        # Every delivery is acknowledged: waiting is the queue's business, not Stripe's.
        assert [deliver(client, evt).status_code for evt in order] == [200] * 5
        work(queue_app)
        rows = db.session.execute(select(Payment.kind, Payment.amount)
                                  .order_by(Payment.provider_id)).all()
        assert rows == [(PaymentKind.DISPUTE, 3000), (PaymentKind.DISPUTE_WON, 3000),
                        (PaymentKind.CHARGE, 5000), (PaymentKind.REFUND, 2000)], order
        assert db.session.get(Gift, gift.id).status is GiftStatus.PARTIALLY_REFUNDED
        assert db.session.scalar(select(func.count()).where(
            ProviderEvent.processed_at.is_(None))) == 0
        assert FailedJobRegistry(queue=queue).count == 0


def test_an_event_that_must_wait_is_retried_later_with_backoff(make_app, database_url,
                                                               queue_app, gift, httpserver):
    serve_charge(httpserver, refunds=[so.refund(refund_id="re_test_1", amount=2000)])
    patient = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                       REDIS_URL=queue_app.config["REDIS_URL"], JOBS_RETRY_INTERVALS=[30, 300])
    with patient.app_context():
        refund = so.event("charge.refunded", so.charge(amount=5000, refunded=2000))
        assert deliver(patient.test_client(), refund).status_code == 200
        work(patient)
        queue = patient.extensions["jobs"].queue
        # Not failed: scheduled to run again in 30 s, and the event is still unprocessed.
        assert ScheduledJobRegistry(queue=queue).count == 1
        assert FailedJobRegistry(queue=queue).count == 0
        assert db.session.scalar(select(ProviderEvent.processed_at)) is None
        assert count(Payment) == 0


def test_with_redis_down_the_event_is_kept_and_process_pending_applies_it(
        make_app, database_url, app, gift, httpserver, caplog):
    serve_charge(httpserver)
    down = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")),
                    REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with down.app_context():
        evt = so.event("checkout.session.completed",
                       so.checkout_session(gift=gift.public_id, amount=5000))
        answer = deliver(down.test_client(), evt)
        # Stored in the database before Redis was asked, so acknowledged all the same.
        assert answer.status_code == 200
        assert "committed but not queued" in caplog.text
        assert count(Payment) == 0
        result = down.test_cli_runner().invoke(args=["payments", "process-pending",
                                                     "--older-than", "0"])
        assert result.exit_code == 0, result.output
        assert "applied 1 event(s); 0 still wait" in result.output
        assert db.session.get(Gift, gift.id).status is GiftStatus.PAID
        assert count(Payment) == 1


def test_process_pending_counts_events_still_waiting(client, gift, queue_app):
    refund = so.event("charge.refunded", so.charge(amount=5000, refunded=2000))
    assert deliver(client, refund).status_code == 200
    result = queue_app.test_cli_runner().invoke(args=["payments", "process-pending",
                                                      "--older-than", "0"])
    assert "applied 0 event(s); 1 still wait for an earlier event" in result.output
    # Received just now: too recent for the default, which leaves it to the queue.
    result = queue_app.test_cli_runner().invoke(args=["payments", "process-pending"])
    assert "applied 0 event(s); 0 still wait" in result.output


def test_jobs_of_a_rolled_back_transaction_are_never_queued(queue_app, queue):
    jobs.enqueue(process_event_job, 1)
    db.session.rollback()
    jobs.discard()
    jobs.commit()
    assert queue.count == 0
    jobs.enqueue(process_event_job, 1)
    jobs.enqueue(process_event_job, 2)
    jobs.commit()
    assert [job.args for job in queue.get_jobs()] == [(1,), (2,)]


def test_a_transactions_mails_go_in_one_job_less_those_of_a_savepoint_rolled_back(
        queue_app, queue):
    jobs.enqueue(deliver_emails, 1)
    mark = jobs.queued_mark()
    jobs.enqueue(deliver_emails, 2)  # queued by an event whose savepoint was rolled back
    jobs.drop_since(mark)
    jobs.enqueue(process_events_job)
    jobs.enqueue(deliver_emails, 3)
    jobs.enqueue(process_events_job)  # one is enough: it finds its work itself
    jobs.commit()
    assert [(job.func_name.rpartition(".")[2], job.args) for job in queue.get_jobs()] == [
        ("deliver_emails", ([1, 3],)), ("process_events_job", ())]


def test_the_worker_command_needs_redis(app):
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output


def test_rate_limits_are_shared_between_processes_through_redis(make_app, database_url, app,
                                                                redis_url):
    first, second = (make_app(database_url, REDIS_URL=redis_url, RATELIMIT_ENABLED=True,
                              RATELIMIT_GIVE="2 per minute") for _ in range(2))
    assert first.config["RATELIMIT_STORAGE_URI"] == redis_url
    make_campaign("twenty")
    db.session.commit()
    answers = [submit_gift(flask_app.test_client(), "twenty", amount="5000").status_code
               for flask_app in (first, second, first)]
    assert answers == [303, 303, 429]
    with Redis.from_url(redis_url) as connection:
        assert connection.keys("LIMITS*")


def test_a_job_on_sqlite_takes_the_write_lock_up_front(request, make_app, redis_url,
                                                        monkeypatch):
    """Beside the web processes, a job's transaction waits its turn to write rather than fail
    half-way with "database is locked"."""
    import sqlite3

    from rq import SimpleWorker

    from tests.conftest import migrated_url

    url = migrated_url(request, "sqlite", "worker-lock")
    seen = []

    def job_reading_first(worker, job, queue):  # stands in for the job AppWorker runs
        db.session.execute(select(func.count()).select_from(ProviderEvent))
        other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            seen.append("free")
        except sqlite3.OperationalError as exc:
            seen.append(str(exc))
        finally:
            other.close()
            db.session.rollback()

    monkeypatch.setattr(SimpleWorker, "perform_job", job_reading_first)
    job = SimpleNamespace(func_name="job_reading_first", id="j1", meta={})
    jobs.worker(make_app(url, REDIS_URL=redis_url)).perform_job(job, None)
    assert seen == ["database is locked"]
