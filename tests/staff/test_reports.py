"""Supporter lookup and the lapsed-donor report."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from app.staff.reports import lapsed_donors, search_supporters
from tests.factories import make_campaign, paid_gift
from tests.support.staff import make_person, sign_in_as

NY = ZoneInfo("America/New_York")


def _history(app):
    """Donors who gave in various years (dates moved back after paying)."""
    now = utcnow()
    this_year = now.astimezone(NY).year
    campaign = make_campaign("history", started_days_ago=4000)

    def gave(email, name, year, amount=5000):
        gift, charge = paid_gift(campaign, amount=amount, email=email, name=name)
        when = datetime(year, 6, 1, 12, tzinfo=NY)
        gift.paid_at = charge.occurred_at = when
        return gift

    gave("lybunt@example.org", "Last Year", this_year - 1)
    gave("loyal@example.org", "Every Year", this_year - 1)
    gave("loyal@example.org", "Every Year", this_year)
    gave("sybunt@example.org", "=HYPERLINK(\"x\")", this_year - 3, amount=7000)
    gave("sybunt@example.org", "=HYPERLINK(\"x\")", this_year - 4, amount=3000)
    db.session.commit()
    return now


def test_lapsed_donor_lists(app):
    now = _history(app)
    assert [r.email for r in lapsed_donors("lybunt", now=now, zone=NY)] == ["lybunt@example.org"]
    [row] = lapsed_donors("sybunt", now=now, zone=NY)
    assert (row.email, row.gifts, row.total) == ("sybunt@example.org", 2, 10_000)


def test_lapsed_csv_download_is_safe_for_spreadsheets(client, app):
    _history(app)
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    page = client.get("/staff/reports/lapsed?kind=sybunt").get_data(as_text=True)
    assert "sybunt@example.org" in page
    response = client.get("/staff/reports/lapsed.csv?kind=sybunt")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["email"] == "sybunt@example.org" and rows[0]["total"] == "100.00"
    assert rows[0]["name"].startswith("'=")  # never run as a formula
    assert client.get("/staff/reports/lapsed?kind=nope").status_code == 404


def test_search_by_name_or_email_and_profile(client, app):
    campaign = make_campaign("search")
    paid_gift(campaign, amount=4200, email="leila.khoury@example.org", name="Leila Khoury",
              utm={"utm_source": "newsletter"})
    db.session.commit()
    assert [s.email for s in search_supporters("KHOURY")] == ["leila.khoury@example.org"]
    assert [s.email for s in search_supporters("leila.k")] == ["leila.khoury@example.org"]
    assert search_supporters("%") == [] and search_supporters("_") == []
    sign_in_as(client, make_person("fr@levantwire.example", roles=(Role.FUNDRAISER,)))
    page = client.get("/staff/supporters?q=khoury").get_data(as_text=True)
    assert "Leila Khoury" in page
    [person] = search_supporters("khoury")
    profile = client.get(f"/staff/supporters/{person.id}").get_data(as_text=True)
    assert "$42.00" in profile and "newsletter" in profile and "Membership" in profile
    assert "No news email subscription" in profile
    assert client.get("/staff/supporters/999999").status_code == 404


def test_lapsed_ignores_refunded_gifts(app):
    from app.giving.models import GiftStatus

    now = utcnow()
    campaign = make_campaign("refunded", started_days_ago=800)
    gifts = {}
    for email in ("refunded@example.org", "kept@example.org"):
        gifts[email], charge = paid_gift(campaign, amount=5000, email=email)
        gifts[email].paid_at = charge.occurred_at = now - timedelta(days=400)
    gifts["refunded@example.org"].status = GiftStatus.REFUNDED
    db.session.commit()
    # 400 days ago is last year or the one before: one list or the other.
    lapsed = [r.email for kind in ("lybunt", "sybunt")
              for r in lapsed_donors(kind, now=now, zone=NY)]
    assert lapsed == ["kept@example.org"]
