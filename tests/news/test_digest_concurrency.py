"""Runs of the daily email racing each other on a real, committed database (cron started a
second one, or two machines run it): every subscriber still gets exactly one email."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import func, insert, select

from app.db import utcnow
from app.extensions import db
from app.news.demo import seed_categories
from app.news.ingest import SAMPLE_FEED, ingest_feed
from app.news.models import DigestSend, NewsSubscriber, SendStatus, SubscriberStatus
from tests.conftest import migrated_url
from tests.support.concurrency import run_concurrently
from tests.support.news import DIGEST_NOW, digest

RUNS = 4
SUBSCRIBERS = 120


class SlowTransport:
    """Takes a little time per message, so that the runs overlap."""

    def __init__(self, log: list, lock: threading.Lock):
        self.log, self.lock = log, lock

    @contextmanager
    def connection(self):
        yield self

    def send(self, recipient: str, message: bytes) -> None:
        time.sleep(0.001)
        with self.lock:
            self.log.append(recipient)


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_app(request, make_app):
    url = migrated_url(request, request.param, f"digest_race_{request.param}")
    return make_app(url)


def test_concurrent_runs_send_each_subscriber_one_email(committed_app):
    app = committed_app
    with app.app_context():
        seed_categories()
        ingest_feed(str(SAMPLE_FEED), now=DIGEST_NOW)
        now = utcnow()
        db.session.execute(insert(NewsSubscriber), [
            {"email": f"reader{i}@example.org", "status": SubscriberStatus.CONFIRMED,
             "consent_version": "test", "consented_at": now, "consent_source": "test",
             "confirmed_at": now, "created_at": now} for i in range(SUBSCRIBERS)])
        db.session.commit()

    log: list[str] = []
    lock = threading.Lock()
    reports = []

    def run():
        reports.append(digest(transport=SlowTransport(log, lock), batch_size=10))

    errors = run_concurrently(app, run, threads=RUNS, timeout=120)
    assert errors == []
    assert sorted(log) == sorted(f"reader{i}@example.org" for i in range(SUBSCRIBERS))
    assert sum(r.sent for r in reports) == SUBSCRIBERS
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DigestSend).where(
            DigestSend.status == SendStatus.SENT)) == SUBSCRIBERS
        db.session.remove()
