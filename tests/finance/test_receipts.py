"""Receipts: numbered without gaps per year in the organisation's zone, voided and reissued
on refunds, never deleted; safe when many processes record gifts at once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app import jobs
from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.finance.receipts import receipt_year
from app.giving.models import Gift
from app.payments.providers import current_provider
from tests.conftest import migrated_url
from tests.factories import make_campaign, paid_gift, refund_gift


def receipts():
    return db.session.execute(select(Receipt.number, Receipt.amount, Receipt.status)
                              .order_by(Receipt.id)).all()


def test_receipts_are_numbered_in_order_per_year(app):
    campaign = make_campaign()
    year = receipt_year(utcnow(), ZoneInfo(app.config["ORG_TIMEZONE"]))
    for _ in range(3):
        paid_gift(campaign)
    assert [n for n, _, _ in receipts()] == [f"{year}-000001", f"{year}-000002",
                                             f"{year}-000003"]


def test_receipt_year_follows_the_organisations_zone(app):
    new_york = ZoneInfo("America/New_York")
    late_new_years_eve = datetime(2027, 1, 1, 3, 30, tzinfo=UTC)  # 22:30 on 31 Dec in New York
    assert receipt_year(late_new_years_eve, new_york) == 2026
    assert receipt_year(late_new_years_eve, ZoneInfo("Asia/Jerusalem")) == 2027
    campaign = make_campaign()
    paid_gift(campaign, when=late_new_years_eve)
    assert receipts()[0].number.startswith("2026-")


def test_a_full_refund_voids_the_receipt(app):
    gift, _ = paid_gift(make_campaign())
    refund_gift(gift, current_provider(), now=utcnow())
    [(number, amount, status)] = receipts()
    assert status is ReceiptStatus.VOID and amount == 5000
    receipt = db.session.scalar(select(Receipt))
    assert receipt.void_reason == "refunded in full" and receipt.voided_at is not None


def test_a_partial_refund_voids_and_reissues_with_a_new_number(app, outbox):
    gift, _ = paid_gift(make_campaign())
    refund_gift(gift, current_provider(), now=utcnow(), amount=1500)
    (first, a1, s1), (second, a2, s2) = receipts()
    assert (a1, s1, a2, s2) == (5000, ReceiptStatus.VOID, 3500, ReceiptStatus.ISSUED)
    assert second != first
    corrected = db.session.scalar(select(Receipt).where(Receipt.number == second))
    assert corrected.replaces.number == first
    refund_gift(gift, current_provider(), now=utcnow(), amount=500)
    assert [(a, s) for _, a, s in receipts()] == [
        (5000, ReceiptStatus.VOID), (3500, ReceiptStatus.VOID), (3000, ReceiptStatus.ISSUED)]
    jobs.commit()
    numbers = [n for n, _, _ in receipts()]
    assert sorted(m["Subject"] for m in outbox()) == [
        "Thank you for your gift to A test appeal",
        f"Your corrected receipt {numbers[1]}", f"Your corrected receipt {numbers[2]}"]


def test_a_rolled_back_gift_leaves_no_gap(app):
    campaign = make_campaign()
    paid_gift(campaign)
    db.session.commit()
    with pytest.raises(RuntimeError):
        with db.session.begin_nested():
            paid_gift(campaign, commit=False)
            raise RuntimeError("the request failed after the receipt was numbered")
    paid_gift(campaign)
    numbers = [int(n.split("-")[1]) for n, _, _ in receipts()]
    assert numbers == [1, 2]


def _record_gifts(url: str, campaign_id: int, worker: int, count: int) -> None:
    """One process recording gifts one transaction at a time, as a web worker would."""
    from app import create_app, jobs
    from app.campaigns.models import Campaign
    from app.db import expect_writes
    from tests.conftest import BASE_CONFIG

    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url,
                      "MAIL_OUTBOX_DIR": "/tmp/newsfund-test-outbox-concurrency"})
    for i in range(count):
        # Payments are recorded in POST requests (webhooks), whose SQLite transactions take the
        # write lock up front (app/db.py): the request hook that marks them does not run in a
        # test request context, so the test marks it as that hook would.
        with app.test_request_context("/webhooks/sandbox", method="POST"):
            expect_writes()
            campaign = db.session.get(Campaign, campaign_id)
            paid_gift(campaign, submission_key=f"w{worker}-{i}-{'x' * 20}", commit=False)
            jobs.commit()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_processes_leave_no_gap_and_no_duplicate(request, make_app, backend):
    url = migrated_url(request, backend, f"receipts_{backend}")
    app = make_app(url)
    with app.app_context():
        campaign_id = make_campaign().id
        # No connection may cross the fork: close them all first.
        db.session.remove()
        db.engine.dispose()
    workers, per_worker = 4, 15
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=_record_gifts, args=(url, campaign_id, w, per_worker))
                 for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0] * workers
    with app.app_context():
        sequences = sorted(db.session.scalars(select(Receipt.sequence)))
        assert sequences == list(range(1, workers * per_worker + 1))
        assert db.session.scalar(select(db.func.count(Gift.id))) == workers * per_worker
