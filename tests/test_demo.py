"""The demo data: a function of the day it is loaded for (``seed-demo --now``), anchored on the
calendar's real occasions, every report with content whatever the day; every paid demo gift
receipted once, numbered in the order the gifts were paid without gaps in each year, and nothing
twice on a second run."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.campaigns.calendar import local_midnight, occasions_between
from app.campaigns.models import Campaign
from app.campaigns.services import campaign_progress
from app.demo import OCCASIONS, number_words
from app.extensions import db
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.finance.receipts import reserve_sequences
from app.finance.statements import count_donors
from app.giving.models import Gift, GiftStatus
from app.mail import OutboundEmail
from app.news.models import Article
from app.payments.models import Payment
from app.staff.dashboards import direct_overview, year_over_year
from app.staff.reports import lapsed_donors

ZONE = ZoneInfo("America/New_York")  # the default ORG_TIMEZONE
FOUNDED = date(2006, 12, 10)  # the default ORG_FOUNDED


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def check_receipts() -> dict[int, int]:
    """Every paid gift has one current receipt for its amount; each year's numbers run
    1..n in the order the gifts were paid. Returns the receipts per year."""
    rows = db.session.execute(
        select(Receipt.year, Receipt.sequence, Receipt.number, Receipt.amount, Receipt.status,
               Gift.amount.label("gift_amount"), Gift.paid_at, Gift.id)
        .join(Gift, Gift.id == Receipt.gift_id)).all()
    assert {r.status for r in rows} == {ReceiptStatus.ISSUED}
    assert all(r.amount == r.gift_amount for r in rows)
    assert all(r.number == f"{r.year}-{r.sequence:06d}" for r in rows)
    assert len({r.id for r in rows}) == len(rows) == count(Gift, Gift.status == GiftStatus.PAID)
    years = defaultdict(list)
    for r in rows:
        years[r.year].append(r)
    for year, receipts in years.items():
        by_number = sorted(receipts, key=lambda r: r.sequence)
        assert [r.sequence for r in by_number] == list(range(1, len(receipts) + 1)), year
        counter = db.session.get(ReceiptCounter, year)
        assert counter.last_sequence == len(receipts)
    return {year: len(receipts) for year, receipts in years.items()}


def demo_in_paid_order():
    """The demo gifts' receipts (offline ones aside) follow the order the gifts were paid."""
    rows = db.session.execute(
        select(Receipt.year, Receipt.sequence, Gift.paid_at, Gift.id)
        .join(Gift, Gift.id == Receipt.gift_id).where(Gift.provider == "demo")
        .order_by(Receipt.year, Receipt.sequence)).all()
    assert rows
    assert rows == sorted(rows, key=lambda r: (r.year, r.paid_at, r.id))


def test_seed_demo_receipts_its_gifts_once_in_paid_order(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])  # today, whatever today is
    assert first.exit_code == 0, first.output
    per_year = check_receipts()
    assert sum(per_year.values()) == count(Gift) > 800
    demo_in_paid_order()

    cheque = db.session.scalar(select(Payment).where(Payment.provider == "cheque"))
    wire = db.session.scalar(select(Payment).where(Payment.provider == "wire"))
    assert cheque.provider_id == "DEMO-004512" and cheque.amount == 50_000
    assert wire.provider_id == "DEMO-FT-88213"
    assert db.session.get(Gift, wire.gift_id).goods_value == 15_000
    assert count(Gift, Gift.provider == "offline") == 2
    assert count(OutboundEmail) == 0  # demo data mails nobody

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert "demo campaigns created: none (already there)" in second.output
    assert check_receipts() == per_year
    assert count(Gift, Gift.provider == "offline") == 2

    # A real gift's receipt continues the year's numbers.
    year = max(per_year)
    assert reserve_sequences(year, 1) == per_year[year] + 1


def test_bulk_gifts_are_receipted_too(app):
    # 1,000: one batch of generate_gifts and issue_receipts (20,000 each) as 3,000 was, and
    # still a thousands separator in the count.
    result = app.test_cli_runner().invoke(args=["seed-demo", "--gifts", "1000"])
    assert result.exit_code == 0, result.output
    assert "numbered 1,000 receipts" in result.output
    per_year = check_receipts()
    assert sum(per_year.values()) == count(Gift) > 1800


def local(*args) -> datetime:
    """A wall-clock time in the organisation's zone, as UTC."""
    return datetime(*args, tzinfo=ZONE).astimezone(UTC)


# 1 January just after midnight, a leap day, Rosh Hashanah week (5788 begins on 2 October 2027),
# New Year's Eve late in the evening (already 1 January in UTC), and the founding anniversary.
DATES = [local(2027, 1, 1, 0, 30), local(2028, 2, 29, 12, 0), local(2027, 10, 4, 9, 0),
         local(2027, 12, 31, 23, 30), local(2026, 12, 10, 8, 0)]


@pytest.mark.parametrize("now", DATES, ids=lambda d: d.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M"))
def test_the_demo_agrees_with_the_calendar_on_any_day(app, now):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    today = now.astimezone(ZONE).date()
    campaigns = {c.slug: c for c in db.session.scalars(select(Campaign))}

    # Every occasion whose campaign window holds now is a live campaign named for its year,
    # with the calendar's dates; the year-round appeal of this year is live too; nothing else.
    expected_live = {f"membership-{today.year}"}
    for occasion in occasions_between(date(today.year - 1, 1, 1), date(today.year + 1, 12, 31),
                                      founded=FOUNDED):
        family, _, number = occasion.key.rpartition("-")
        if family not in OCCASIONS:
            continue
        slug = f"{number_words(int(number))}-years" if family == "anniversary" else occasion.key
        starts, ends = local_midnight(occasion.starts, ZONE), local_midnight(occasion.ends, ZONE)
        if starts <= now < ends:
            expected_live.add(slug)
            assert (campaigns[slug].starts_at, campaigns[slug].ends_at) == (starts, ends)
    live = {slug for slug, c in campaigns.items() if c.is_live(now)}
    assert live == expected_live

    for slug, campaign in campaigns.items():
        progress = campaign_progress(campaign, now)
        if campaign.starts_at > now:  # scheduled: no gift yet, at most one per occasion
            assert progress.gifts == 0, slug
        elif campaign.has_ended(now):
            assert progress.donors > 10 and progress.raised > campaign.goal_amount // 2, slug
        else:  # live: about its share of the goal for the time gone, never far beyond it
            gone = (now - campaign.starts_at) / (campaign.ends_at - campaign.starts_at)
            assert 0 < progress.raised <= campaign.goal_amount * (1.5 * gone + 0.1), slug
        assert campaign.ends_at > campaign.starts_at
    upcoming = [c.slug.rstrip("0123456789") for c in campaigns.values() if c.starts_at > now]
    assert len(upcoming) == len(set(upcoming))

    # Every report has content: lapsed donors of both kinds, last year's statements, this
    # year's campaigns beside last year's.
    assert lapsed_donors("lybunt", now=now, zone=ZONE)
    assert lapsed_donors("sybunt", now=now, zone=ZONE)
    assert count_donors(today.year - 1) > 50
    # The overview's figures straight from the ledger (direct_overview: the rollup the
    # dashboard reads equals it figure for figure, tests/staff/test_dashboards.py, and building
    # every campaign's rollup was half of this test): an occasion raised money both years.
    assert any(pair.last is not None and pair.this.raised > 0 and pair.last.raised > 0
               for pair in year_over_year(direct_overview(now=now)))
    check_receipts()

    # The sample stories are the day's news, each address carrying its publication day.
    stories = list(db.session.scalars(select(Article)))
    assert stories and max(s.published_at for s in stories) <= now
    assert (now - max(s.published_at for s in stories)).total_seconds() < 3600
    for story in stories:
        assert story.published_at.astimezone(ZONE).strftime("/%Y/%m/%d/") in story.link

    again = app.test_cli_runner().invoke(args=["seed-demo", "--now", now.isoformat()])
    assert "demo campaigns created: none (already there)" in again.output
    assert count(OutboundEmail) == 0


def test_a_bad_now_is_refused(app):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO 8601 date and time" in result.output
    assert count(Campaign) == 0


def test_number_words():
    assert [number_words(n) for n in (1, 13, 20, 21, 40, 99)] == [
        "one", "thirteen", "twenty", "twenty-one", "forty", "ninety-nine"]
    with pytest.raises(ValueError):
        number_words(100)
