"""The staff home (/staff/): today's gifts and money per currency and the live campaigns'
progress, equal to the ledger, and what each role sees. A fixed clock: 22:30 in New York on
9 March 2027, already 10 March in UTC, so a UTC day would count the wrong rows."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.campaigns.services import campaign_progress
from app.extensions import db
from app.payments.models import SIGN, Payment, PaymentKind
from app.staff.dashboards import staff_home
from app.staff.models import Role
from tests.factories import dispute, make_campaign, paid_gift, refund
from tests.support.staff import make_person, sign_in_as

NY = ZoneInfo("America/New_York")
NOW = datetime(2027, 3, 10, 3, 30, tzinfo=UTC)  # 9 March, 22:30 in New York
TODAY = NOW.astimezone(NY).date()
DAY = timedelta(days=1)


def campaign(slug: str, *, currency: str = "USD", goal: int = 1_000_000, **fields):
    """Live on the real clock, so gifts can be made to it (``start_gift`` asks); ``place``
    then sets its dates around ``NOW``."""
    return make_campaign(slug, currency=currency, goal=goal, **fields)


def place(c, *, starts: datetime = NOW - 10 * DAY, ends: datetime = NOW + 20 * DAY) -> None:
    c.starts_at, c.ends_at = starts, ends


@pytest.fixture
def ledger(app):
    """Gifts in two currencies around New York's midnight, a refund and a dispute today, and
    campaigns in every state."""
    usd = campaign("spring-appeal", goal=250_000)
    eur = campaign("europe-appeal", currency="EUR", goal=100_000)
    later = campaign("later")
    drafted = campaign("drafted", published=False)
    paused = campaign("paused", paused_at=NOW - DAY)
    ended = campaign("over")
    # Today in New York (00:30 and 21:00), and yesterday (23:30), all 9 or 10 March in UTC.
    _, a = paid_gift(usd, amount=5_000, email="a@example.org",
                     when=datetime(2027, 3, 9, 5, 30, tzinfo=UTC))
    paid_gift(usd, amount=2_500, email="b@example.org",
              when=datetime(2027, 3, 9, 4, 30, tzinfo=UTC))
    _, c = paid_gift(usd, amount=10_000, email="c@example.org",
                     when=datetime(2027, 3, 10, 2, 0, tzinfo=UTC))
    refund(c, 2_000, datetime(2027, 3, 10, 3, 0, tzinfo=UTC))
    _, e = paid_gift(eur, amount=3_000, email="e@example.org",
                     when=datetime(2027, 3, 9, 12, 0, tzinfo=UTC))
    dispute(e, 3_000, datetime(2027, 3, 9, 20, 0, tzinfo=UTC))
    paid_gift(eur, amount=4_000, email="a@example.org",
              when=datetime(2027, 3, 8, 12, 0, tzinfo=UTC))
    paid_gift(ended, amount=9_900, email="f@example.org",
              when=datetime(2027, 3, 9, 15, 0, tzinfo=UTC))  # an ended campaign's late row
    a.fee = 175
    place(usd, ends=NOW + 5 * DAY)
    place(eur, ends=NOW + 12 * DAY)
    place(later, starts=NOW + 3 * DAY)  # scheduled
    place(drafted)
    place(paused)
    place(ended, starts=NOW - 40 * DAY, ends=NOW - 2 * DAY)
    db.session.commit()
    return {"usd": usd, "eur": eur}


def ledger_today() -> dict[str, dict[str, int]]:
    """Today's rows summed in Python, each row's day read in New York: the reference."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in db.session.scalars(select(Payment)):
        if row.occurred_at.astimezone(NY).date() != TODAY:
            continue
        line = found[row.currency]
        line[row.kind.value] += row.amount
        if row.kind is PaymentKind.CHARGE:
            line["gifts"] += 1
            line["fees"] += row.fee or 0
        line["raised"] += row.amount * SIGN[row.kind]
    return found


def test_todays_money_per_currency_equals_the_ledger(ledger):
    home = staff_home(now=NOW, zone=NY, campaigns=False)
    assert home.today == TODAY and home.live is None
    expected = ledger_today()
    assert [line.currency for line in home.money] == ["EUR", "USD"]
    for line in home.money:
        want = expected[line.currency]
        assert (line.charges, line.gross, line.refunds, line.disputes, line.raised,
                line.fees) == (want["gifts"], want["charge"], want["refund"], want["dispute"],
                               want["raised"], want["fees"])
        assert line.net == want["raised"] - want["fees"]
    usd = next(line for line in home.money if line.currency == "USD")
    assert (usd.charges, usd.gross, usd.refunds, usd.raised) == (3, 24_900, 2_000, 22_900)
    eur = next(line for line in home.money if line.currency == "EUR")
    assert (eur.charges, eur.gross, eur.disputes, eur.raised) == (1, 3_000, 3_000, 0)


def test_live_campaigns_progress_equals_the_ledger(ledger):
    home = staff_home(now=NOW, zone=NY, campaigns=True)
    assert [item.campaign.slug for item in home.live] == ["spring-appeal", "europe-appeal"]
    for item in home.live:
        assert item.progress == campaign_progress(item.campaign, NOW)
        raised = sum(p.amount * SIGN[p.kind] for p in db.session.scalars(
            select(Payment).where(Payment.campaign_id == item.campaign.id)))
        assert item.progress.raised == raised
    spring, europe = home.live
    assert (spring.progress.raised, spring.progress.goal, spring.progress.percent,
            spring.progress.donors, spring.progress.days_left) == (15_500, 250_000, 6, 3, 5)
    assert (europe.progress.raised, europe.progress.donors, europe.progress.days_left,
            europe.progress.currency) == (4_000, 1, 12, "EUR")


@pytest.fixture
def clock(monkeypatch):
    import app.staff.views as staff_views

    monkeypatch.setattr(staff_views, "utcnow", lambda: NOW)


def home_page(client, role: str) -> str:
    sign_in_as(client, make_person(f"{role}@levantwire.example", roles=(Role(role),)))
    response = client.get("/staff/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def card(page: str, currency: str) -> dict[str, str]:
    """The figures of one currency's card: data-figure -> text."""
    section = page.split(f'data-currency="{currency}"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', section))


def test_a_fundraiser_sees_live_campaigns_and_todays_money_without_fees(client, ledger, clock):
    page = home_page(client, "fundraiser")
    assert "Today, Tuesday, March 9, 2027" in page and "since midnight in New York" in page
    assert card(page, "USD") == {"gifts": "3", "gross": "$249.00", "refunds": "−$20.00",
                                 "raised": "$229.00"}
    assert card(page, "EUR") == {"gifts": "1", "gross": "€30.00", "disputes": "−€30.00",
                                 "raised": "€0.00"}
    live = page.split('id="live-heading"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'data-campaign="([\w-]+)"', live) == ["spring-appeal", "europe-appeal"]
    assert 'href="/staff/campaigns/spring-appeal"' in live
    assert "$155" in live and "$2,500" in live and "6%" in live  # raised of the goal
    assert "5</strong> days left" in live and "3</strong> donors" in live
    assert "later" not in live and "paused" not in live and "drafted" not in live
    assert "Today's reconciliation" not in page and "Provider fees" not in page
    assert "/staff/campaigns" in page and "/staff/finance/reconciliation" not in page


def test_finance_sees_todays_money_with_fees_and_no_campaign_dashboards(client, ledger, clock):
    page = home_page(client, "finance")
    assert card(page, "USD") == {"gifts": "3", "gross": "$249.00", "refunds": "−$20.00",
                                 "raised": "$229.00", "fees": "−$1.75", "net": "$227.25"}
    assert "(known so far)" in page  # two of today's USD charges have no fee reported yet
    assert 'href="/staff/finance/reconciliation?from=2027-03-09&amp;to=2027-03-09"' in page
    assert "Live campaigns" not in page and "/staff/campaigns/spring-appeal" not in page
    assert 'href="/staff/campaigns"' not in page


def test_an_admin_sees_everything(client, ledger, clock):
    page = home_page(client, "admin")
    assert "Live campaigns" in page and "Provider fees" in page
    assert "/staff/roles" in page and "/staff/audit" in page
    assert card(page, "USD")["net"] == "$227.25"


def test_a_quiet_day(client, app, clock):
    page = home_page(client, "admin")
    assert "No gifts yet today." in page and "No campaign is taking gifts now." in page
