"""Dashboard figures against a direct sum of the ledger: refunds, partial refunds, disputes."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency
from app.giving.services import ensure_plan
from app.staff import rollup
from app.staff.dashboards import (
    campaign_dashboard,
    direct_dashboard,
    direct_overview,
    occasion_key,
    overview,
    year_over_year,
)
from tests.factories import dispute, make_campaign, paid_gift, refund

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
    paid_gift(earlier, amount=1000, email="old@example.org", name="Old Friend",
              when=now - timedelta(days=350))
    earlier.ends_at = now - timedelta(days=300)  # ended since
    a, a_charge = paid_gift(campaign, amount=5000, email="old@example.org",
                            name="Old Friend", when=now - timedelta(days=5),
                            utm={"utm_source": "newsletter"})
    b, b_charge = paid_gift(campaign, amount=10000, email="new@example.org",
                            name="Dana Peretz", when=now - timedelta(days=4), anonymous=True)
    c, c_charge = paid_gift(campaign, amount=2500, email="new@example.org",
                            name="Dana Peretz", when=now - timedelta(days=3),
                            utm={"utm_source": "newsletter"})
    d, d_charge = paid_gift(campaign, amount=7000, email="gone@example.org",
                            name="Refunded Person", when=now - timedelta(days=2))
    e, e_charge = paid_gift(campaign, amount=3000, email="monthly@example.org",
                            name="Monthly Giver", when=now - timedelta(days=1),
                            frequency=Frequency.MONTHLY)
    ensure_plan(e, provider="sandbox", subscription_id="sub_test_1", customer_id=None,
                started_at=now - timedelta(days=1))
    f, f_charge = paid_gift(campaign, amount=4000, email="disputer@example.org",
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

    row = {r.campaign.slug: r for r in overview(now=now, zone=NY)}["appeal-2026"]
    assert (row.raised, row.gifts, row.donors) == (raw, 4, 3)
    assert same(dash, direct_dashboard(campaign, now=now, zone=NY))
    direct = {r.campaign.slug: (r.raised, r.gifts, r.donors) for r in direct_overview(now=now)}
    assert {r.campaign.slug: (r.raised, r.gifts, r.donors)
            for r in overview(now=now, zone=NY)} == direct


def same(a, b) -> bool:
    """Two dashboards agree on every figure."""
    fields = ("raised", "charged", "refunded", "disputed", "gifts", "donors", "new_donors",
              "returning_donors", "by_frequency", "monthly_recurring", "active_plans",
              "average_gift", "median_gift", "days", "sources", "top_gifts")
    for name in fields:
        assert getattr(a, name) == getattr(b, name), name
    assert a.progress == b.progress
    return True


def test_the_rollup_moves_forward_exactly_with_the_ledger(app):
    """A snapshot, then gifts, a partial refund, a full refund of the top gift, a dispute, a
    donor giving again: the dashboard equals the direct computation at every step."""
    now = utcnow()
    earlier = make_campaign("before", started_days_ago=200, days_left=10)
    paid_gift(earlier, amount=900, email="back@example.org", when=now - timedelta(days=150))
    earlier.ends_at = now - timedelta(days=100)
    campaign = make_campaign("rolling", started_days_ago=10, goal=50_000, match_amount=5_000)
    charges = [paid_gift(campaign, amount=1000 * (i + 1), email=f"d{i % 4}@example.org",
                         when=now - timedelta(days=5 - i % 5))[1] for i in range(12)]
    db.session.commit()
    first = campaign_dashboard(campaign, now=now, zone=NY)  # builds and stores the snapshot
    assert db.session.get(rollup.DashboardSnapshot, campaign.id) is not None
    assert same(first, direct_dashboard(campaign, now=now, zone=NY))

    later = now + timedelta(minutes=10)  # past the snapshot's safety window
    _, big = paid_gift(campaign, amount=50_000, email="big@example.org", when=later)
    paid_gift(campaign, amount=700, email="back@example.org", when=later,
              utm={"utm_source": "facebook"})
    paid_gift(campaign, amount=1000, email="d0@example.org", when=later)
    refund(charges[3], 1500, later)  # partial
    refund(charges[11], 12_000, later)  # full: stops counting, its donor may stay
    refund(big, 50_000, later)  # the top gift, fully refunded
    dispute(charges[5], 6000, later)
    db.session.commit()
    rolled = campaign_dashboard(campaign, now=later, zone=NY)
    assert same(rolled, direct_dashboard(campaign, now=later, zone=NY))
    assert rolled.returning_donors == 1  # back@ gave to the earlier campaign
    # The stored snapshot was not rebuilt: the figures came from the rows after it.
    assert rollup.delta_rows(campaign.id, *_stored(campaign.id))


def _stored(campaign_id):
    import json

    row = db.session.get(rollup.DashboardSnapshot, campaign_id)
    return json.loads(row.data), row.payment_mark


def test_a_rebuilt_snapshot_after_an_audited_correction(app):
    from app.audit import Actor, record_change

    now = utcnow()
    campaign = make_campaign("corrected")
    gift, charge = paid_gift(campaign, amount=5000)
    db.session.commit()
    campaign_dashboard(campaign, now=now, zone=NY)
    # A correction rewrites the ledger row in place (finance's offline gifts) and is audited.
    charge.amount = gift.amount = 4000
    record_change(Actor(None, "test"), "offline.correct", "gift", gift.id)
    db.session.commit()
    assert campaign_dashboard(campaign, now=now, zone=NY).raised == 4000


def test_an_empty_campaign_has_zero_everywhere(app):
    campaign = make_campaign("empty")
    dash = campaign_dashboard(campaign, now=utcnow(), zone=NY)
    assert same(dash, direct_dashboard(campaign, now=utcnow(), zone=NY))
    assert (dash.raised, dash.gifts, dash.donors, dash.median_gift, dash.average_gift) == \
        (0, 0, 0, 0, 0)
    assert dash.days and all(d.raised == 0 for d in dash.days)
    assert dash.sources == [] and dash.top_gifts == []


def test_days_follow_the_organisations_zone(app):
    """A gift at 03:00 UTC is the previous evening in New York."""
    campaign = make_campaign("zoned", started_days_ago=3)
    now = utcnow()
    when = (now - timedelta(days=1)).replace(hour=3, minute=7)
    paid_gift(campaign, amount=1234, when=when)
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
    pairs = year_over_year(overview(now=now, zone=NY))
    latest = next(p for p in pairs if p.this.campaign.slug == "year-end-2026")
    assert latest.last.campaign.slug == "year-end-2025"
    assert all(p.this.campaign.slug != "twenty-years" for p in pairs)


def test_flask_staff_rollup_rebuilds_every_snapshot(app):
    campaign = make_campaign("cron")
    paid_gift(campaign, amount=4200)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["staff", "rollup"])
    assert result.exit_code == 0, result.output
    assert "cron:" in result.output
    assert db.session.get(rollup.DashboardSnapshot, campaign.id) is not None
    assert app.test_cli_runner().invoke(args=["staff", "rollup", "--campaign", "nope"]
                                        ).exit_code != 0
