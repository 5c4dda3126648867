"""The scheduler (app/schedule.py): each task's slot from its interval or its local time in
ORG_TIMEZONE, one claim per slot however many schedulers run, and the task handed to the
queue, or run in the scheduler itself when there is no queue to take it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from app import schedule
from app.extensions import db
from app.schedule import ScheduledRun, Scheduler, Task
from tests.conftest import migrated_url

NEW_YORK = ZoneInfo("America/New_York")
JERUSALEM = ZoneInfo("Asia/Jerusalem")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily(hour: int, minute: int = 0) -> Task:
    return Task("daily-email", schedule.daily_email_job, at=clock_time(hour, minute))


def test_a_daily_slot_is_the_local_date_once_its_local_time_has_come():
    task = daily(6)
    # 05:59 in New York in winter (UTC-5): not yet; 06:00: that day.
    assert task.slot(at("2027-01-15T10:59:59"), NEW_YORK) is None
    assert task.slot(at("2027-01-15T11:00:00"), NEW_YORK) == "2027-01-15"
    # In summer (UTC-4) the same local hour is an hour earlier in UTC.
    assert task.slot(at("2027-07-15T09:59:00"), NEW_YORK) is None
    assert task.slot(at("2027-07-15T10:00:00"), NEW_YORK) == "2027-07-15"
    # Late evening in New York is already the next day in UTC: the slot is New York's day.
    assert task.slot(at("2027-01-16T03:30:00"), NEW_YORK) == "2027-01-15"
    # Early morning in Jerusalem (UTC+2) is still the day before in UTC.
    assert task.slot(at("2027-01-14T23:30:00"), JERUSALEM) is None  # 01:30 on the 15th
    assert task.slot(at("2027-01-15T04:00:00"), JERUSALEM) == "2027-01-15"  # 06:00
    # New York's last evening of the year is UTC's new year.
    assert daily(23).slot(at("2028-01-01T04:15:00"), NEW_YORK) == "2027-12-31"


def test_a_daily_slot_comes_on_the_days_the_clocks_change():
    # 02:30 does not exist on 14 March 2027 in New York: the slot comes an hour later.
    assert daily(2, 30).slot(at("2027-03-14T06:59:00"), NEW_YORK) is None  # 01:59 EST
    assert daily(2, 30).slot(at("2027-03-14T07:29:00"), NEW_YORK) is None  # 03:29 EDT
    assert daily(2, 30).slot(at("2027-03-14T07:30:00"), NEW_YORK) == "2027-03-14"
    # 01:30 comes twice on 7 November: the slot comes at the first.
    assert daily(1, 30).slot(at("2027-11-07T05:29:00"), NEW_YORK) is None  # 01:29 EDT
    assert daily(1, 30).slot(at("2027-11-07T05:30:00"), NEW_YORK) == "2027-11-07"


def test_an_interval_slot_is_the_same_for_every_scheduler_within_it():
    task = Task("process-pending", schedule.process_pending_job, every=300)
    slots = {task.slot(at("2027-01-15T10:05:00") + timedelta(seconds=s), NEW_YORK)
             for s in (0, 1, 150, 299)}
    assert slots == {"2027-01-15T10:05:00Z"}
    assert task.slot(at("2027-01-15T10:10:00"), NEW_YORK) == "2027-01-15T10:10:00Z"


def test_the_settings_choose_the_tasks_and_their_times(make_app, database_url):
    flask_app = make_app(database_url, SCHEDULE_DAILY_EMAIL_AT="07:15",
                         SCHEDULE_ROLLUP_SECONDS=0, SCHEDULE_PROCESS_PENDING_SECONDS=120)
    found = {t.name: (t.every, t.at) for t in schedule.tasks(flask_app)}
    # The sandbox is the provider: its renewals are scheduled, Stripe's sync is not.
    assert found == {"daily-email": (0, clock_time(7, 15)), "sandbox-renew": (3600, None),
                     "settle-fees": (900, None), "process-pending": (120, None),
                     "send-mail": (300, None)}
    with pytest.raises(ValueError, match="HH:MM"):
        schedule.parse_time_of_day("7am")


@pytest.fixture(scope="module")
def schedule_url(request, database_url):
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    return migrated_url(request, backend, "schedule")


@pytest.fixture
def fresh_url(schedule_url, make_app):
    """A database of this module's, with no claim in it: the schedulers commit, as they do in
    production."""
    yield schedule_url
    with make_app(schedule_url).app_context():
        db.session.execute(delete(ScheduledRun))
        db.session.commit()


def test_two_schedulers_at_once_hand_each_slot_over_once(make_app, fresh_url, redis_url):
    apps = [make_app(fresh_url, REDIS_URL=redis_url) for _ in range(2)]
    schedulers = [Scheduler(flask_app, name=f"host{i}") for i, flask_app in enumerate(apps)]
    queue = apps[0].extensions["jobs"].queue
    noon = at("2027-01-15T17:00:00")  # past the daily email's 06:00 in New York
    barrier = threading.Barrier(2)
    results: dict[str, list] = {}

    def tick(scheduler: Scheduler) -> None:
        barrier.wait()
        results[scheduler.name] = scheduler.run_due(noon)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    names = {"daily-email", "sandbox-renew", "settle-fees", "process-pending", "send-mail",
             "rollup"}
    outcomes = sorted((task, how) for done in results.values() for task, _, how in done)
    assert outcomes == sorted([(name, "queued") for name in names]
                              + [(name, "taken") for name in names])
    queued = sorted(job.func_name.rsplit(".", 1)[1] for job in queue.get_jobs())
    assert queued == sorted(task.func.__name__ for task in schedulers[0].tasks)
    # The same slots again, from either: nothing more.
    assert schedulers[0].run_due(noon + timedelta(seconds=30)) == []
    assert schedulers[1].run_due(noon + timedelta(seconds=31)) == []
    assert queue.count == len(names)
    # The next interval brings the interval tasks again; the daily email waits for tomorrow.
    later = schedulers[1].run_due(noon + timedelta(hours=1))
    assert sorted(task for task, _, how in later if how == "queued") == sorted(
        names - {"daily-email"})
    with apps[0].app_context():
        claims = db.session.execute(select(ScheduledRun.claimed_by, func.count())
                                    .group_by(ScheduledRun.claimed_by)).all()
        assert sum(n for _, n in claims) == 2 * len(names) - 1


def test_without_a_queue_the_scheduler_runs_the_task_itself(make_app, fresh_url, monkeypatch):
    ran = []
    monkeypatch.setattr(schedule, "settle_fees_job", lambda: ran.append("settle-fees"))
    flask_app = make_app(fresh_url, SCHEDULE_DAILY_EMAIL_AT="", SCHEDULE_ROLLUP_SECONDS=0,
                         SCHEDULE_PROCESS_PENDING_SECONDS=0, SCHEDULE_SANDBOX_RENEW_SECONDS=0,
                         SCHEDULE_SEND_MAIL_SECONDS=0)
    done = Scheduler(flask_app).run_due(at("2027-01-15T17:00:00"))
    assert done == [("settle-fees", "2027-01-15T17:00:00Z", "ran here")]
    assert ran == ["settle-fees"]


def test_with_redis_unreachable_the_scheduler_runs_the_task_itself(make_app, fresh_url,
                                                                    monkeypatch, caplog):
    ran = []
    monkeypatch.setattr(schedule, "settle_fees_job", lambda: ran.append("settle-fees"))
    flask_app = make_app(fresh_url, REDIS_URL="redis://127.0.0.1:1/0",  # nothing on port 1
                         SCHEDULE_DAILY_EMAIL_AT="", SCHEDULE_ROLLUP_SECONDS=0,
                         SCHEDULE_PROCESS_PENDING_SECONDS=0, SCHEDULE_SANDBOX_RENEW_SECONDS=0,
                         SCHEDULE_SEND_MAIL_SECONDS=0)
    done = Scheduler(flask_app).run_due(at("2027-01-15T17:00:00"))
    assert [how for _, _, how in done] == ["ran here"] and ran == ["settle-fees"]
    assert "Redis unreachable, running settle-fees here" in caplog.text


def test_a_claim_the_database_refused_is_tried_again_at_the_next_tick(make_app, fresh_url,
                                                                       monkeypatch):
    from sqlalchemy.exc import OperationalError

    ran = []
    monkeypatch.setattr(schedule, "settle_fees_job", lambda: ran.append("settle-fees"))
    flask_app = make_app(fresh_url, SCHEDULE_DAILY_EMAIL_AT="", SCHEDULE_ROLLUP_SECONDS=0,
                         SCHEDULE_PROCESS_PENDING_SECONDS=0, SCHEDULE_SANDBOX_RENEW_SECONDS=0,
                         SCHEDULE_SEND_MAIL_SECONDS=0)
    scheduler = Scheduler(flask_app)
    real_claim = schedule.claim

    def database_down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(schedule, "claim", database_down)
    assert scheduler.run_due(at("2027-01-15T17:00:00")) == [] and ran == []
    monkeypatch.setattr(schedule, "claim", real_claim)
    assert [how for _, _, how in scheduler.run_due(at("2027-01-15T17:00:10"))] == ["ran here"]
    assert ran == ["settle-fees"]


def test_the_rollup_task_rebuilds_the_snapshots_of_the_live_campaigns(app):
    from app.staff.rollup import DashboardSnapshot
    from tests.factories import make_campaign, paid_gift

    live = make_campaign("live")
    make_campaign("ended", started_days_ago=40, days_left=-10)
    paid_gift(live, amount=5000)
    schedule.rollup_job()
    snapshots = {row.campaign_id: row for row in db.session.scalars(select(DashboardSnapshot))}
    assert set(snapshots) == {live.id}
    assert json.loads(snapshots[live.id].data)["gifts"] == 1  # the gift paid just now


def test_the_mail_task_sends_what_an_outage_left_queued_not_what_a_job_is_sending(app, outbox):
    from app.db import utcnow
    from app.mail import OutboundEmail, build_message

    def queued(key: str, minutes_ago: int) -> None:
        message = build_message(sender="giving@levantwire.example", to=f"{key}@example.org",
                                subject=key, text="Thank you.", html="<p>Thank you.</p>")
        db.session.add(OutboundEmail(dedupe_key=key, recipient=f"{key}@example.org",
                                     subject=key, message=message,
                                     created_at=utcnow() - timedelta(minutes=minutes_ago)))
        db.session.commit()

    queued("outage", minutes_ago=30)  # the mail server was down then
    queued("fresh", minutes_ago=0)  # its delivery job may be running right now
    schedule.send_mail_job()
    assert [m["Subject"] for m in outbox()] == ["outage"]
    assert db.session.scalar(select(OutboundEmail.sent_at).where(
        OutboundEmail.dedupe_key == "fresh")) is None
