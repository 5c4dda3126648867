"""The campaign page's shared copy (``campaigns.pages``): the very page a fresh render gives,
never older than the ledger, whichever process recorded the gift, with each visitor's own token,
submission key and ``utm_*`` values filled in, escaped."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import Actor
from app.campaigns import pages
from app.campaigns import views as campaign_views
from app.campaigns.services import (
    campaign_page_state,
    campaign_progress,
    campaign_progress_versioned,
)
from app.campaigns.views import render_campaign
from app.db import utcnow
from app.extensions import db
from app.finance.offline import OfflineGift, correct_offline_gift, record_offline_gift
from app.giving.forms import donation_form
from app.giving.models import Gift, GiftStatus
from app.giving.services import GivingRules, start_gift
from app.payments import ledger
from app.payments.models import Payment, PaymentKind
from tests.conftest import migrated_url
from tests.factories import gift_request, make_campaign, paid_gift
from tests.support.flow import give, hidden_value

SLUG = "cached-appeal"
URL = f"/campaigns/{SLUG}"
VISITOR_FIELDS = ("csrf_token", "submission_key", "utm_source", "utm_medium", "utm_campaign",
                  "utm_term", "utm_content")


@pytest.fixture
def campaign(app):
    return make_campaign(SLUG, goal=100_000, match_amount=50_000, match_sponsor="a friend")


def new_request() -> None:
    """Flask-WTF keeps a request's signed token in ``g``, and the tests' app context outlives
    requests (under a server each request has its own): start clean, as a new request does."""
    g.pop("csrf_token", None)


def page_of(client, url: str = URL) -> str:
    new_request()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def without_visitor_values(page: str) -> str:
    for name in VISITOR_FIELDS:
        page = re.sub(rf'(name="{name}" type="hidden" value=")[^"]*"', r'\1"', page)
    return page


def figures(page: str) -> tuple[str, str, str]:
    raised = re.search(r'<p class="raised"><strong>([^<]+)</strong>', page).group(1)
    donors = re.search(r"<strong>([\d,]+)</strong> donors?", page).group(1)
    gifts = re.search(r"<strong>([\d,]+)</strong> gifts?", page).group(1)
    return raised, donors, gifts


def expected_figures(campaign) -> tuple[str, str, str]:
    p = campaign_progress(campaign, utcnow())
    return f"${p.raised // 100:,}", f"{p.donors:,}", f"{p.gifts:,}"


def test_the_shared_page_is_the_page_a_fresh_render_gives(app, campaign, renders):
    paid_gift(campaign, "a@example.org", amount=2500)
    paid_gift(campaign, "b@example.org", amount=10_000)
    query = "?utm_source=newsletter&utm_campaign=year-end"
    first = page_of(app.test_client(), URL + query)
    served = page_of(app.test_client(), URL + query)  # another visitor: from the cache
    assert renders == [SLUG]

    with app.test_request_context(URL + query):
        g.csrf_token = hidden_value(served, "csrf_token")  # what generate_csrf() will return
        form = donation_form(campaign)
        form.submission_key.data = hidden_value(served, "submission_key")
        fresh, status = render_campaign(campaign, form)
    assert status == 200
    assert served == fresh
    assert without_visitor_values(first) == without_visitor_values(served)
    assert figures(served) == expected_figures(campaign) == ("$125", "2", "2")


def test_a_gift_shows_at_once_in_a_process_that_had_the_page(app, make_app, database_url,
                                                             campaign, renders):
    """Two gunicorn workers: one keeps the page, the donor pays through the other, and comes
    back to the first."""
    worker_a = app.test_client()
    worker_b = make_app(database_url).test_client()
    before = page_of(worker_a)
    assert figures(before) == ("$0", "0", "0")
    assert figures(page_of(app.test_client())) == ("$0", "0", "0")
    assert len(renders) == 1

    paid = give(worker_b, SLUG, amount="5000")
    assert paid.status_code == 303  # to the thank-you page
    after = page_of(worker_a)
    assert figures(after) == expected_figures(campaign) == ("$50", "1", "1")
    assert len(renders) == 3  # once on each worker for the gift, once again on worker A


def test_each_new_ledger_row_renders_the_page_again(app, campaign, renders):
    client = app.test_client()
    page_of(client)
    gift, _ = paid_gift(campaign, "a@example.org", amount=10_000)
    assert figures(page_of(client)) == ("$100", "1", "1")
    charge = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id))

    ledger.record_refund(charge, refund_id="re_1", amount=4000, occurred_at=utcnow())
    db.session.commit()
    assert figures(page_of(client)) == expected_figures(campaign) == ("$60", "1", "1")

    ledger.record_refund(charge, refund_id="re_2", amount=6000, occurred_at=utcnow())
    db.session.commit()
    db.session.refresh(gift)
    assert gift.status is GiftStatus.REFUNDED
    assert figures(page_of(client)) == expected_figures(campaign) == ("$0", "0", "0")
    page_of(client)
    assert len(renders) == 4


def test_a_corrected_offline_gift_shows_at_once(app, campaign, renders):
    """Finance corrects a cheque in place (its ledger row is rewritten, no row is added): the
    audit entry the correction writes moves the version."""
    clerk = Actor(id=None, label="clerk@levantwire.example")
    zone, now = ZoneInfo("America/New_York"), utcnow()
    cheque = OfflineGift(received_on=now.astimezone(zone).date(), method="cheque",
                         reference="001234", donor_name="Yusuf Haddad",
                         email="yusuf@example.org", campaign=SLUG, amount=25_000)
    gift = record_offline_gift(cheque, actor=clerk, zone=zone, now=now, send_receipt=False)
    db.session.commit()
    client = app.test_client()
    assert figures(page_of(client)) == ("$250", "1", "1")

    correct_offline_gift(gift.id, {"amount": 20_000}, reason="misread the cheque",
                         actor=clerk, zone=zone, now=now, send_receipt=False)
    db.session.commit()
    assert figures(page_of(client)) == expected_figures(campaign) == ("$200", "1", "1")

    make_campaign("other-appeal")
    correct_offline_gift(gift.id, {"campaign": "other-appeal"}, reason="meant for the other",
                         actor=clerk, zone=zone, now=now, send_receipt=False)
    db.session.commit()
    assert figures(page_of(client)) == expected_figures(campaign) == ("$0", "0", "0")
    assert len(renders) == 3


def test_an_edited_campaign_shows_at_once(app, campaign, renders):
    client = app.test_client()
    page_of(client)
    campaign.title = "Twenty years, and counting"
    db.session.commit()
    assert "<h1>Twenty years, and counting</h1>" in page_of(client)
    campaign.suggested_amounts[0].impact = "a new impact line"
    db.session.commit()
    assert "a new impact line" in page_of(client)
    page_of(client)
    assert len(renders) == 3


def test_days_left_follows_the_clock(app, campaign, renders, monkeypatch):
    client = app.test_client()
    start = utcnow()
    monkeypatch.setattr(campaign_views, "utcnow", lambda: start)
    assert "<strong>30</strong> days left" in page_of(client)
    monkeypatch.setattr(campaign_views, "utcnow", lambda: start + timedelta(hours=1))
    assert "<strong>30</strong> days left" in page_of(client)
    assert len(renders) == 1
    monkeypatch.setattr(campaign_views, "utcnow", lambda: campaign.ends_at - timedelta(days=29))
    assert "<strong>29</strong> days left" in page_of(client)
    monkeypatch.setattr(campaign_views, "utcnow", lambda: campaign.ends_at)
    assert "This campaign has ended" in page_of(client)


def test_each_visitor_gets_their_own_token_key_and_link_parameters(app, campaign):
    one = page_of(app.test_client(), URL + "?utm_source=newsletter&utm_medium=email")
    two = page_of(app.test_client(), URL + "?utm_source=facebook")
    three = page_of(app.test_client(), URL)
    for name in ("csrf_token", "submission_key"):
        assert len({hidden_value(page, name) for page in (one, two, three)}) == 3
    assert [hidden_value(p, "utm_source") for p in (one, two, three)] == [
        "newsletter", "facebook", ""]
    assert [hidden_value(p, "utm_medium") for p in (one, two, three)] == ["email", "", ""]
    assert without_visitor_values(one) == without_visitor_values(two) == without_visitor_values(
        three)


def test_link_parameters_are_escaped_and_cut_like_the_form_does(app, campaign):
    hostile = '"><script>alert(1)</script>&\'x'
    page_of(app.test_client())  # the shared copy exists
    new_request()
    response = app.test_client().get(URL, query_string={"utm_source": hostile,
                                                        "utm_term": "x" * 150})
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page
    source = hidden_value(page, "utm_source")
    assert source == "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#39;x"
    assert html.unescape(source) == hostile
    assert hidden_value(page, "utm_term") == "x" * 100


def test_the_token_from_a_shared_page_is_the_visitors_own(app, campaign):
    page_of(app.test_client())  # someone else's visit made the shared copy
    donor, other = app.test_client(), app.test_client()
    page = page_of(donor)
    data = {name: html.unescape(hidden_value(page, name)) for name in VISITOR_FIELDS}
    data.update(currency="USD", amount_choice="2500", frequency="one_time", name="Noa Levi",
                email="noa@example.org")

    page_of(other)
    new_request()
    assert other.post(f"{URL}/give", data=data).status_code == 400  # not their token
    new_request()
    assert donor.post(f"{URL}/give", data={k: v for k, v in data.items()
                                            if k != "csrf_token"}).status_code == 400
    assert db.session.scalar(select(Gift)) is None

    new_request()
    response = donor.post(f"{URL}/give", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sandbox/checkout/")


def test_visitors_with_anything_personal_in_their_session_get_a_page_of_their_own(
        app, campaign, renders):
    page_of(app.test_client())
    page_of(app.test_client())
    assert len(renders) == 1
    browsed = app.test_client()  # came from another page: anonymous, as Flask-Login notes
    with browsed.session_transaction() as session:
        session.update({"csrf_token": "x" * 40, "_fresh": False, "_id": "f" * 128})
    assert "Sign in" in page_of(browsed)
    assert len(renders) == 1

    signed_in = app.test_client()
    with signed_in.session_transaction() as session:
        session["_user_id"] = "42"
    page_of(signed_in)
    remembered = app.test_client()
    remembered.set_cookie("remember_token", "42|abc", domain=app.config["SERVER_NAME"])
    page_of(remembered)
    flashed = app.test_client()
    with flashed.session_transaction() as session:
        session["_flashes"] = [("info", "Your email address is confirmed.")]
    assert "Your email address is confirmed." in page_of(flashed)
    assert "Your email address is confirmed." not in page_of(app.test_client())
    assert len(renders) == 4


def test_a_new_snapshot_with_the_same_figures_keeps_the_rendered_page(app, campaign, renders):
    """On PostgreSQL any commit anywhere moves the snapshot: the figures are read again, and
    the page is kept when they have not changed."""
    client = app.test_client()
    page_of(client)
    cache = pages.page_cache()
    [key] = cache.keys()
    kept = cache.get(key)
    moved = replace(kept.version, snapshot="1:1:")
    cache.put(key, replace(kept, version=moved))
    page_of(client)
    assert len(renders) == 1
    assert cache.get(key).version not in (moved, None)
    assert cache.get(key).version.last_payment_id == kept.version.last_payment_id
    assert cache.get(key).chunks is kept.chunks


def test_the_page_version_reads_the_ledger(app, campaign):
    state = campaign_page_state(SLUG)
    progress, version = campaign_progress_versioned(campaign, utcnow())
    assert state.version.last_payment_id is None is version.last_payment_id
    is_postgresql = db.session.get_bind().dialect.name == "postgresql"
    assert (state.version.snapshot is not None) is is_postgresql
    gift, _ = paid_gift(campaign, "a@example.org", amount=2500)
    charge = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id))
    assert charge.kind is PaymentKind.CHARGE
    assert campaign_page_state(SLUG).version.last_payment_id == charge.id
    assert campaign_progress_versioned(campaign, utcnow())[1].last_payment_id == charge.id
    assert campaign_page_state("no-such-appeal") is None

    # Other campaigns' rows, before and after this one's in the index, are never counted.
    later = make_campaign("later-appeal")
    assert campaign_page_state("later-appeal").version.last_payment_id is None
    later_gift, _ = paid_gift(later, "b@example.org", amount=2500)
    later_charge = db.session.scalar(select(Payment).where(Payment.gift_id == later_gift.id))
    assert campaign_page_state("later-appeal").version.last_payment_id == later_charge.id
    assert campaign_page_state(SLUG).version.last_payment_id == charge.id


def test_unknown_and_unpublished_campaigns_are_404(app, client, campaign):
    assert client.get("/campaigns/no-such-appeal").status_code == 404
    page_of(client)
    campaign.published = False
    db.session.commit()
    assert client.get(URL).status_code == 404


def test_a_gift_committed_late_under_a_lower_id_is_not_missed(request, make_app):
    """PostgreSQL hands out ids from a sequence: a transaction holding a lower payment id can
    commit after one holding a higher id. The page read in between must not stay cached once
    the first commits. (SQLite runs one writer at a time, so ids follow commit order there.)"""
    app = make_app(migrated_url(request, "postgresql", "late_commit"))
    with app.app_context():
        campaign = make_campaign(SLUG, goal=100_000)
        now = utcnow()
        rules = GivingRules.from_config(app.config)
        first, second = (start_gift(campaign, gift_request(amount=amount, email=email),
                                    rules=rules, now=now)
                         for amount, email in ((2500, "a@example.org"), (10_000, "b@example.org")))
        db.session.commit()
        ids = {"first": (first.id, first.total), "second": (second.id, second.total)}
        db.session.remove()

        def pay(session: Session, name: str) -> None:
            gift_id, total = ids[name]
            gift = session.get(Gift, gift_id)
            gift.status, gift.paid_at = GiftStatus.PAID, now
            session.add(Payment(gift_id=gift_id, campaign_id=gift.campaign_id,
                                kind=PaymentKind.CHARGE, amount=total, currency="USD",
                                provider="sandbox", provider_id=f"pi_{name}", occurred_at=now))
            session.flush()

        client = app.test_client()
        with Session(db.engine) as early, Session(db.engine) as late:
            pay(early, "first")  # the lower id, still uncommitted
            pay(late, "second")
            late.commit()
            assert figures(page_of(client)) == ("$100", "1", "1")  # rendered and kept
            assert figures(page_of(client)) == ("$100", "1", "1")
            early.commit()
        assert figures(page_of(client)) == ("$125", "2", "2")


class Clock:
    """Stands in for ``time`` in app.campaigns.pages: a monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_reader_sees_a_total_at_most_the_recheck_window_old(make_app, database_url, campaign,
                                                               renders, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(pages, "time", clock)
    site = make_app(database_url, CAMPAIGN_PAGE_RECHECK_SECONDS=1.0)
    statements = []
    monkeypatch.setattr(pages, "campaign_page_state",
                        lambda slug: statements.append(slug) or campaign_page_state(slug))
    assert figures(page_of(site.test_client())) == ("$0", "0", "0")
    paid_gift(campaign, "a@example.org", amount=2500)

    clock.now += 0.9  # within the window: the page as it was, and no statement run
    assert figures(page_of(site.test_client())) == ("$0", "0", "0")
    assert (len(statements), len(renders)) == (1, 1)

    clock.now += 0.2  # past it: checked, and rendered again
    assert figures(page_of(site.test_client())) == ("$25", "1", "1")
    assert (len(statements), len(renders)) == (2, 2)


def test_a_donor_back_from_the_thank_you_page_sees_their_gift_at_once(make_app, database_url,
                                                                       campaign, renders,
                                                                       monkeypatch):
    clock = Clock()
    monkeypatch.setattr(pages, "time", clock)
    site = make_app(database_url, CAMPAIGN_PAGE_RECHECK_SECONDS=60.0)
    reader, donor = site.test_client(), site.test_client()
    assert figures(page_of(reader)) == ("$0", "0", "0")

    paid = give(donor, SLUG, amount="5000")
    assert paid.status_code == 303
    new_request()
    assert donor.get(paid.headers["Location"]).status_code == 200  # the thank-you page
    clock.now += 1
    # The donor's page is checked and shows the gift; a reader's waits out the window.
    assert figures(page_of(donor)) == ("$50", "1", "1")
    assert figures(page_of(reader)) == ("$50", "1", "1")  # the page the donor's check renewed
    with donor.session_transaction() as session:
        assert session[pages.DONOR_KEY] is True


def test_home_lists_the_six_latest_past_campaigns(app):
    for n in range(8):  # ended 1 to 8 days ago
        make_campaign(f"past-{n}", title=f"Past appeal {n}", started_days_ago=40,
                      days_left=-(n + 1))
    make_campaign("running", title="The running appeal")
    page = app.test_client().get("/").get_data(as_text=True)
    assert "The running appeal" in page
    shown = [n for n in range(8) if f"Past appeal {n}<" in page]
    assert shown == [0, 1, 2, 3, 4, 5]
    assert app.test_client().get("/campaigns/past-7").status_code == 200
