"""The database helpers the imports write a batch with (``app.db``), on both databases: a
lookup of many values (``among``), many rows inserted at once (``insert_many``: COPY on
PostgreSQL) as an INSERT would write them, and the statistics of growing tables kept up."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.accounts.models import Supporter
from app.db import GrowingTables, among, insert_many
from app.extensions import db
from app.news.models import NewsSubscriber, SubscriberStatus


def test_insert_many_writes_what_an_insert_would_and_among_finds_it(app):
    when = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    insert_many(Supporter.__table__, [
        {"email": f"r{i}@example.org", "name": "Tab\there, a \"quote\" and \\", "created_at": when}
        for i in range(3)])
    insert_many(NewsSubscriber.__table__, [
        {"email": "r0@example.org", "status": SubscriberStatus.CONFIRMED,
         "consent_version": "v1", "consented_at": when, "consent_source": "import",
         "consent_line": None}])
    insert_many(Supporter.__table__, [])  # nothing to do
    found = db.session.scalars(select(Supporter).where(
        among(Supporter.email, ["r0@example.org", "r2@example.org", "nobody@example.org"]))
        .order_by(Supporter.email)).all()
    assert [(s.email, s.name, s.created_at, s.session_version) for s in found] == [
        ("r0@example.org", "Tab\there, a \"quote\" and \\", when, 0),
        ("r2@example.org", "Tab\there, a \"quote\" and \\", when, 0)]
    subscriber = db.session.scalar(select(NewsSubscriber))
    # The enum by its value, and the Python-side default (created_at) filled in.
    assert (subscriber.status, subscriber.consent_line) == (SubscriberStatus.CONFIRMED, None)
    assert subscriber.created_at is not None
    assert db.session.scalars(select(Supporter.id).where(among(Supporter.email, []))).all() == []


def test_growing_tables_are_analysed_each_time_the_rows_written_double(app):
    growing = GrowingTables(Supporter.__table__, NewsSubscriber.__table__, first=2)
    growing.wrote(1)
    growing.wrote(2)  # 3 rows: ANALYZE on PostgreSQL (inside the transaction), then at 6
    growing.wrote(2)
    assert (growing.written, growing._next) == (5, 6)
