"""Migrations 0013 (a row per sign-in) and 0016 (the newest link of each purpose) down and up
again on a database holding a supporter, their sign-ins and their links."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app.db import utcnow
from app.extensions import db
from tests.conftest import migrated_url

BEFORE_SESSIONS = "8c1f4e2a9b70"  # 0012, before 0013
BEFORE_LINKS = "498abd0d6bcb"  # 0015, before 0016
TABLES = {"account_session", "latest_account_link"}


def tables() -> set[str]:
    db.session.commit()  # a migration waits for the locks of an open transaction
    return set(inspect(db.engine).get_table_names()) & TABLES


def supporters() -> list[tuple[str, int]]:
    rows = [tuple(row) for row in db.session.execute(text(
        "SELECT email, session_version FROM supporter ORDER BY email"))]
    db.session.commit()
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sign_ins_and_newest_links_down_and_up(request, make_app, backend):
    app = make_app(migrated_url(request, backend, f"session_migrations_{backend}"))
    with app.app_context():
        now = utcnow()
        db.session.execute(text(
            "INSERT INTO supporter (email, name, created_at, session_version) "
            "VALUES ('noa@example.org', 'Noa', :at, 3)"), {"at": now})
        db.session.execute(text(
            "INSERT INTO account_session (supporter_id, key_hash, created_at) "
            "SELECT id, :hash, :at FROM supporter"), {"hash": "a" * 64, "at": now})
        db.session.execute(text(
            "INSERT INTO latest_account_link (supporter_id, purpose, jti) "
            "SELECT id, 'signin', 'some-link-id' FROM supporter"))
        db.session.commit()
        assert tables() == TABLES

        downgrade(revision=BEFORE_LINKS)
        assert tables() == {"account_session"}
        downgrade(revision=BEFORE_SESSIONS)
        assert tables() == set()
        assert supporters() == [("noa@example.org", 3)]

        upgrade()
        assert tables() == TABLES
        assert supporters() == [("noa@example.org", 3)]
        # Empty again: every browser signs in once more, every older link is stale.
        assert db.session.execute(text(
            "SELECT (SELECT count(*) FROM account_session) "
            "+ (SELECT count(*) FROM latest_account_link)")).scalar() == 0
        db.session.remove()
        db.engine.dispose()
