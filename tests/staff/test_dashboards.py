"""Dashboard figures against a direct sum of the ledger: refunds, partial refunds, disputes."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency
from app.giving.services import ensure_plan
from app.staff.dashboards import campaign_dashboard, occasion_key, overview, year_over_year
from tests.factories import make_campaign
from tests.staff.support import dispute, paid_gift, refund

NY = ZoneInfo("America/New_York")


def ledger_sum(campaign_id: int) -> int:
    """The raw SQL the dashboard must agree with."""
    return db.session.execute(text(
        "SELECT COALESCE(SUM(CASE kind WHEN 'charge' THEN amount WHEN 'dispute_won' THEN amount "
        "ELSE -amount END), 0) FROM payment WHERE campaign_id = :id"), {"id": campaign_id}
    ).scalar_one()


def test_dashboard_agrees_with_the_ledger(app):
    now = utcnow()
    earlier = make_campaign("last-appeal", started_days_ago=400, days_left=10)
    campaign = make_campaign("appeal-2026", started_days_ago=10, goal=100_000,
                             match_amount=20_000)
    # A returning donor: gave to an earlier campaign before this one opened.
    paid_gift(app, earlier, amount=1000, email="old@example.org", name="Old Friend",
              when=now - timedelta(days=350))
    earlier.ends_at = now - timedelta(days=300)  # ended since
    a, a_charge = paid_gift(app, campaign, amount=5000, email="old@example.org",
                            name="Old Friend", when=now - timedelta(days=5),
                            utm={"utm_source": "newsletter"})
    b, b_charge = paid_gift(app, campaign, amount=10000, email="new@example.org",
                            name="Dana Peretz", when=now - timedelta(days=4), anonymous=True)
    c, c_charge = paid_gift(app, campaign, amount=2500, email="new@example.org",
                            name="Dana Peretz", when=now - timedelta(days=3),
                            utm={"utm_source": "newsletter"})
    d, d_charge = paid_gift(app, campaign, amount=7000, email="gone@example.org",
                            name="Refunded Person", when=now - timedelta(days=2))
    e, e_charge = paid_gift(app, campaign, amount=3000, email="monthly@example.org",
                            name="Monthly Giver", when=now - timedelta(days=1),
                            frequency=Frequency.MONTHLY)
    ensure_plan(e, provider="sandbox", subscription_id="sub_test_1", customer_id=None,
                started_at=now - timedelta(days=1))
    f, f_charge = paid_gift(app, campaign, amount=4000, email="disputer@example.org",
                            name="Disputer", when=now - timedelta(days=1))
    refund(a_charge, 1500, now - timedelta(hours=30))  # partial
    refund(d_charge, 7000, now - timedelta(hours=20))  # full: the gift stops counting
    dispute(f_charge, 4000, now - timedelta(hours=10))  # withheld: stops counting
    db.session.commit()

    dash = campaign_dashboard(campaign, now=now, zone=NY)
    raw = ledger_sum(campaign.id)
    assert raw == 5000 + 10000 + 2500 + 7000 + 3000 + 4000 - 1500 - 7000 - 4000
    assert dash.raised == raw
    assert dash.charged - dash.refunded - dash.disputed == raw
    assert (dash.refunded, dash.disputed) == (8500, 4000)
    assert sum(day.raised for day in dash.days) == raw
    assert dash.days[-1].cumulative == raw
    assert dash.gifts == 4  # a (partly refunded), b, c, e
    assert dash.donors == 3  # old, new (twice), monthly
    assert (dash.returning_donors, dash.new_donors) == (1, 2)
    assert dash.by_frequency["recurring"] == {"gifts": 1, "raised": 3000}
    assert dash.by_frequency["one_time"]["gifts"] == 3
    assert dash.by_frequency["one_time"]["raised"] + 3000 == raw
    assert (dash.active_plans, dash.monthly_recurring) == (1, 3000)
    amounts = sorted([5000, 10000, 2500, 3000])
    assert dash.average_gift == sum(amounts) // 4
    assert dash.median_gift == amounts[1]  # the lower middle of an even count
    by_source = {s.source: s for s in dash.sources}
    assert by_source["newsletter"].raised == 5000 - 1500 + 2500
    assert by_source["newsletter"].gifts == 2
    assert sum(s.raised for s in dash.sources) == raw
    assert dash.top_gifts[0].amount == 10000
    assert dash.top_gifts[0].donor == "Anonymous"
    assert "Dana Peretz" not in [g.donor for g in dash.top_gifts if g.amount == 10000]
    assert dash.progress.match_used == min(raw, 20_000)

    row = {r.campaign.slug: r for r in overview(now=now)}["appeal-2026"]
    assert (row.raised, row.gifts, row.donors) == (raw, 4, 3)


def test_an_empty_campaign_has_zero_everywhere(app):
    campaign = make_campaign("empty")
    dash = campaign_dashboard(campaign, now=utcnow(), zone=NY)
    assert (dash.raised, dash.gifts, dash.donors, dash.median_gift, dash.average_gift) == \
        (0, 0, 0, 0, 0)
    assert dash.days and all(d.raised == 0 for d in dash.days)
    assert dash.sources == [] and dash.top_gifts == []


def test_days_follow_the_organisations_zone(app):
    """A gift at 03:00 UTC is the previous evening in New York."""
    campaign = make_campaign("zoned", started_days_ago=3)
    now = utcnow()
    when = (now - timedelta(days=1)).replace(hour=3, minute=7)
    paid_gift(app, campaign, amount=1234, when=when)
    db.session.commit()
    dash = campaign_dashboard(campaign, now=now, zone=NY)
    [day] = [d for d in dash.days if d.raised]
    assert day.day == when.astimezone(NY).date()
    assert day.day != when.date()


def test_year_over_year_pairs_the_same_occasion():
    assert occasion_key("year-end-2026") == "year-end"
    assert occasion_key("rosh-hashanah-5787") == "rosh-hashanah"
    assert occasion_key("twenty-years") is None


def test_year_over_year_rows(app):
    now = utcnow()
    make_campaign("year-end-2025", started_days_ago=400, days_left=-370)
    make_campaign("year-end-2026", started_days_ago=20, days_left=10)
    make_campaign("twenty-years")
    pairs = year_over_year(overview(now=now))
    latest = next(p for p in pairs if p.this.campaign.slug == "year-end-2026")
    assert latest.last.campaign.slug == "year-end-2025"
    assert all(p.this.campaign.slug != "twenty-years" for p in pairs)
