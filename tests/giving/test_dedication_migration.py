"""Migration 0015 (``gift.dedication_sent_at``) up and down on a database holding gifts: a note
queued before it counts as sent."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import bindparam, select, text

from app.db import UTCDateTime, utcnow
from app.extensions import db
from app.giving.models import Dedication, Gift
from app.giving.services import GivingRules, start_gift
from tests.factories import gift_request, make_campaign
from tests.support.migrations import columns

BEFORE = "656dec34a38f"  # 0014, news article links
REVISION = "498abd0d6bcb"  # 0015
QUEUED = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def sent_at() -> dict[str, datetime | None]:
    rows = dict(db.session.execute(select(Gift.donor_name, Gift.dedication_sent_at)).all())
    db.session.commit()  # a migration waits for the locks of an open transaction
    return rows


def test_notes_sent_before_count_as_sent(unmigrated_app):
    upgrade()
    campaign = make_campaign("twenty")
    rules = GivingRules.from_config(unmigrated_app.config)
    ids = {}
    for name in ("Sent", "Unpaid"):
        gift = start_gift(campaign, gift_request(
            donor_name=name, dedication=Dedication.HONOUR, dedication_name="Rivka",
            dedication_email="rivka@example.org"), rules=rules, now=utcnow())
        db.session.flush()
        ids[name] = gift.id
    db.session.commit()

    downgrade(revision=BEFORE)
    assert "dedication_sent_at" not in columns("gift")
    db.session.execute(text(
        "INSERT INTO outbound_email (dedupe_key, recipient, subject, message, created_at, "
        "attempts) VALUES (:key, 'rivka@example.org', 'A gift', 'm', :at, 1)")
        .bindparams(bindparam("at", type_=UTCDateTime)),
        {"key": f"dedication:{ids['Sent']}", "at": QUEUED})
    db.session.commit()

    upgrade(revision=REVISION)
    assert sent_at() == {"Sent": QUEUED, "Unpaid": None}
    downgrade(revision=BEFORE)
    assert "dedication_sent_at" not in columns("gift")
    assert db.session.execute(text("SELECT count(*) FROM gift")).scalar() == 2
    db.session.commit()
    upgrade()
    assert sent_at() == {"Sent": QUEUED, "Unpaid": None}
