"""Migrations 0013 (a row per sign-in) and 0016 (the newest link of each purpose) down and up
again on a database holding a supporter, their sign-ins and their links."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app.db import utcnow
from app.extensions import db
from tests.support.migrations import rows, tables

BEFORE_SESSIONS = "8c1f4e2a9b70"  # 0012, before 0013
BEFORE_LINKS = "498abd0d6bcb"  # 0015, before 0016
REVISION = "7d2b91e4c6a0"  # 0016
TABLES = {"account_session", "latest_account_link"}


def supporters() -> list[tuple]:
    return rows("SELECT email, session_version FROM supporter ORDER BY email")


def test_sign_ins_and_newest_links_down_and_up(unmigrated_app):
    upgrade(revision=REVISION)
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
    assert tables() & TABLES == TABLES

    downgrade(revision=BEFORE_LINKS)
    assert tables() & TABLES == {"account_session"}
    downgrade(revision=BEFORE_SESSIONS)
    assert tables() & TABLES == set()
    assert supporters() == [("noa@example.org", 3)]

    upgrade(revision=REVISION)
    assert tables() & TABLES == TABLES
    assert supporters() == [("noa@example.org", 3)]
    # Empty again: every browser signs in once more, every older link is stale.
    assert rows("SELECT (SELECT count(*) FROM account_session) "
                "+ (SELECT count(*) FROM latest_account_link)") == [(0,)]
