"""Every migration goes down and up again on a database holding data: the demo's campaigns,
gifts, ledger and receipts, the news, and a row in every other table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from app.accounts.models import AccountSession, LatestAccountLink, Supporter, UsedAccountLink
from app.audit import Actor
from app.campaigns.models import Campaign
from app.demo import seed_demo
from app.extensions import db
from app.giving.models import Frequency, RecurringPlan
from app.imports.models import ImportChunk, ImportRun
from app.mail import OutboundEmail
from app.news import models as news
from app.news.demo import seed_news
from app.payments.models import Payout, PayoutTransaction, ProviderEvent
from app.prompts.models import EmailAppeal, Placement, Prompt, PromptCount, Segment
from app.schedule import ScheduledRun
from app.staff.models import Role
from app.staff.roles import grant_role
from app.staff.rollup import DashboardSnapshot
from tests.support.migrations import rows, tables

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)
FIRST = "323799befed5"  # the initial schema


def populate() -> None:
    """The demo (campaigns, gifts, payments, receipts, audit entries, supporters, news), and
    a row in each table the demo leaves empty."""
    zone = ZoneInfo("America/New_York")
    seed_demo(NOW, zone=zone, founded=date(2006, 12, 10))
    seed_news(NOW, zone)
    db.session.flush()
    campaign = db.session.scalars(select(Campaign).order_by(Campaign.id)).first()
    noa = db.session.scalars(select(Supporter).order_by(Supporter.id)).first()
    category = db.session.scalars(select(news.Category).order_by(news.Category.id)).first()
    subscriber = news.NewsSubscriber(
        email=noa.email, supporter_id=noa.id, status=news.SubscriberStatus.CONFIRMED,
        consent_version="2026-01", consented_at=NOW, consent_source="test", confirmed_at=NOW)
    payout = Payout(provider="stripe", provider_id="po_test", amount=4710, currency="USD",
                    status="paid", arrival_date=NOW.date(), created=NOW)
    db.session.add_all([
        RecurringPlan(supporter_id=noa.id, campaign_id=campaign.id, frequency=Frequency.MONTHLY,
                      amount=1800, currency="USD", provider="stripe",
                      provider_subscription_id="sub_test", next_charge_at=NOW + timedelta(30)),
        OutboundEmail(dedupe_key="test:1", recipient=noa.email, subject="Thank you",
                      message="m", created_at=NOW),
        ProviderEvent(provider="stripe", event_id="evt_test", type="charge.refunded",
                      payload="{}", received_at=NOW),
        AccountSession(supporter_id=noa.id, key_hash="a" * 64, created_at=NOW),
        UsedAccountLink(jti="b" * 32, purpose="signin", supporter_id=noa.id, used_at=NOW),
        LatestAccountLink(supporter_id=noa.id, purpose="signin", jti="c" * 32),
        news.Follow(supporter_id=noa.id, category_id=category.id, created_at=NOW),
        subscriber,
        news.Digest(digest_date=NOW.date(), window_start=NOW - timedelta(1), window_end=NOW,
                    started_at=NOW),
        payout,
        DashboardSnapshot(campaign_id=campaign.id, computed_at=NOW, payment_mark=1,
                          audit_mark=1, data="{}"),
        ScheduledRun(task="rollup", slot="2026-11-20T15:00:00Z", claimed_at=NOW,
                     claimed_by="test"),
    ])
    db.session.flush()
    db.session.add_all([
        news.DigestSend(subscriber_id=subscriber.id, digest_date=NOW.date(),
                        status=news.SendStatus.SENT, claimed_at=NOW, sent_at=NOW),
        PayoutTransaction(payout_id=payout.id, provider="stripe", transaction_id="txn_test",
                          type="charge", amount=5000, fee=290, net=4710, currency="USD"),
        EmailAppeal(campaign_id=campaign.id, switched_on_at=NOW),
    ])
    prompt = Prompt(campaign_id=campaign.id, name="Overlay", placement=Placement.OVERLAY,
                    segment=Segment.FOLLOWER, category_id=category.id, starts_at=NOW,
                    ends_at=NOW + timedelta(30), headline_a="Stand with us", button_a="Give")
    db.session.add(prompt)
    db.session.flush()
    db.session.add(PromptCount(prompt_id=prompt.id, variant="a", day=NOW.date(), impressions=3))
    run = ImportRun(kind="gifts", filename="gifts.csv", size=3, actor_label="test")
    db.session.add(run)
    db.session.flush()
    db.session.add(ImportChunk(run_id=run.id, position=0, data=b"a,b"))
    grant_role(noa, Role.FINANCE, actor=Actor(id=None, label="test"))
    db.session.commit()


def counts() -> dict[str, int]:
    """The rows in each table of the schema."""
    return {table: rows(f"SELECT count(*) FROM {table}")[0][0] for table in sorted(tables())}


def revisions() -> list[str]:
    """The revisions from the newest to the first."""
    from alembic.script import ScriptDirectory
    from flask import current_app

    config = current_app.extensions["migrate"].migrate.get_config()
    return [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]


def test_every_migration_goes_down_and_up_on_a_populated_database(unmigrated_app):
    upgrade()
    populate()
    before = counts()
    # The positive control: every table holds rows, so every migration moves real data. (A
    # new table: give it a row in populate().)
    assert [table for table, n in before.items() if n == 0] == []
    assert before["gift"] > 1000

    newest, *older = revisions()
    assert older[-1] == FIRST
    for revision in older:
        downgrade(revision=revision)
        # Each downgrade keeps every row of the tables it keeps.
        assert counts() == {table: before[table] for table in tables()}, revision
    # ... and every upgrade, from the first schema on its data (from nothing: above).
    first = counts()
    upgrade()
    assert counts() == {table: first.get(table, 0) for table in before}
    assert rows("SELECT version_num FROM alembic_version") == [(newest,)]
    # The first migration's downgrade, on data too.
    downgrade(revision="base")
    assert tables() == set()
