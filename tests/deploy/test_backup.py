"""Backups (README "Backups"): deploy/backup.sh dumps the PostgreSQL database with data in it,
deploy/restore.sh restores the dump into a new database, and the restored database holds the
same rows and keeps working (the next gift and receipt follow on). PostgreSQL only: it is what
production runs and what pg_dump backs up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from app.extensions import db
from app.finance.models import Receipt
from tests.conftest import migrated_url
from tests.factories import make_campaign
from tests.support.flow import give

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def contents(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = {}
            for table in sorted(inspect(connection).get_table_names()):
                keys = inspect(connection).get_pk_constraint(table)["constrained_columns"]
                order = ", ".join(f'"{key}"' for key in keys) or "1"
                tables[table] = [tuple(row) for row in connection.execute(
                    text(f'SELECT * FROM "{table}" ORDER BY {order}'))]
            return tables
    finally:
        engine.dispose()


def test_a_dump_restores_into_a_new_database_that_holds_every_row_and_keeps_working(
        request, make_app, pg_cluster, tmp_path):
    source_url = migrated_url(request, "postgresql", "backup_source")
    source = make_app(source_url)
    with source.app_context():
        make_campaign("twenty")
        client = source.test_client()
        give(client, "twenty")
        give(client, "twenty", amount="5000", frequency="monthly")
        receipt_numbers = db.session.scalars(select(Receipt.number).order_by(Receipt.id)).all()
        db.session.remove()
        db.engine.dispose()
    before = contents(source_url)
    assert len(before["gift"]) == 2 and len(before["receipt"]) == 2
    assert before["provider_event"] and before["outbound_email"] and before["alembic_version"]

    env = {"PATH": f"{pg_cluster.bindir}:/usr/bin:/bin", "PGHOST": "127.0.0.1",
           "PGPORT": str(pg_cluster.port), "PGUSER": pg_cluster.user}
    backups = tmp_path / "backups"
    backups.mkdir()
    stale = backups / "newsfund-20000101T000000Z.dump"
    stale.write_bytes(b"a dump older than KEEP_DAYS")
    os.utime(stale, (0, 0))
    made = subprocess.run([DEPLOY / "backup.sh", backups, "backup_source"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    [dump] = backups.iterdir()  # the stale one removed, no partial file left
    assert dump.name.startswith("newsfund-") and dump.suffix == ".dump"
    assert made.stdout.strip() == str(dump)

    restored = subprocess.run([DEPLOY / "restore.sh", dump, "backup_restored", pg_cluster.user],
                              env=env, capture_output=True, text=True, timeout=120)
    assert restored.returncode == 0, restored.stderr
    restored_url = pg_cluster.url("backup_restored")
    assert contents(restored_url) == before

    # The restored database is the app's: sequences, counters and constraints came along.
    app = make_app(restored_url)
    with app.app_context():
        client = app.test_client()
        assert client.get("/healthz").get_json()["status"] == "ok"
        give(client, "twenty", amount="10000")
        numbers = db.session.scalars(select(Receipt.number).order_by(Receipt.id)).all()
        db.session.remove()
    assert len(receipt_numbers) == 2
    assert numbers[:2] == receipt_numbers
    assert len(numbers) == 3 and numbers[2] > numbers[1]
    # ... and a second restore into the same name is refused rather than mixed into it.
    again = subprocess.run([DEPLOY / "restore.sh", dump, "backup_restored", pg_cluster.user],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "already exists" in again.stderr

