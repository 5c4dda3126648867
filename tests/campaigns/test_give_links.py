"""The ways to give that every page offers: the header's "Give" link and the phone's bottom bar
(both through ``/give`` to the main appeal), the site icon, and the donation form's pay button
and its secure-payment line."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import g

from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from tests.factories import make_campaign
from tests.support.flow import give, submit_gift
from tests.support.staff import make_person, sign_in_as

HEADER_GIVE = re.compile(r'<a class="site-give" href="([^"]*)">Give</a>')
GIVE_BAR = 'class="give-bar"'


def page_of(client, url: str) -> str:
    vars(g).clear()  # a new request: the tests' app context (and its g) outlives requests
    response = client.get(url)
    assert response.status_code in (200, 404), (url, response.status_code)
    return response.get_data(as_text=True)


def header_give(page: str) -> str:
    [href] = HEADER_GIVE.findall(page)
    return href


def test_give_leads_to_the_live_campaign_that_ends_soonest(client):
    make_campaign("later", days_left=40)
    make_campaign("sooner", days_left=5)
    make_campaign("over", days_left=-1, started_days_ago=30)
    make_campaign("paused", days_left=2, paused_at=utcnow())
    make_campaign("draft", days_left=1, published=False)

    response = client.get("/give")
    assert response.status_code == 302
    assert response.headers["Location"] == "/campaigns/sooner"
    # A link's utm_* parameters and its choice of amount and frequency go along (nothing else).
    tagged = client.get("/give?utm_source=newsletter&utm_medium=email&foo=bar&amount=25"
                        "&frequency=monthly&gift=abc")
    assert tagged.headers["Location"] == ("/campaigns/sooner?utm_source=newsletter"
                                          "&utm_medium=email&amount=25&frequency=monthly")


def test_give_leads_home_when_no_campaign_is_live(client):
    make_campaign("over", days_left=-1, started_days_ago=30)
    make_campaign("soon", days_left=40, started_days_ago=-5)  # starts in five days
    response = client.get("/give")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_the_main_appeal_follows_the_clock(client):
    campaign = make_campaign("sooner", days_left=5)
    make_campaign("later", days_left=40)
    assert client.get("/give").headers["Location"] == "/campaigns/sooner"
    campaign.ends_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert client.get("/give").headers["Location"] == "/campaigns/later"


@pytest.mark.parametrize("url", ["/", "/account/signin", "/news/subscribe", "/no-such-page",
                                 "/campaigns/over"])
def test_every_page_has_the_give_link_and_bar(client, url):
    make_campaign("over", days_left=-1, started_days_ago=30)
    page = page_of(client, url)
    assert header_give(page) == "/give"
    assert GIVE_BAR in page
    assert re.search(r'<a class="button button-primary button-block" href="/give" '
                     r'data-give-bar>Give now</a>', page)


def test_a_live_campaigns_give_link_is_its_own_form_and_it_has_no_bar(app, client):
    make_campaign("twenty")
    for visitor in (client, app.test_client()):  # a rendered page, then the shared copy
        page = page_of(visitor, "/campaigns/twenty")
        assert header_give(page) == "#give-heading"
        assert 'id="give-heading"' in page
        assert GIVE_BAR not in page


def test_no_bar_on_the_checkout_thank_you_and_staff_pages(app, client):
    make_campaign("twenty")
    paid = give(client, "twenty")
    thanks = page_of(client, paid.headers["Location"])
    assert "Thank you, Noa." in thanks
    assert GIVE_BAR not in thanks
    assert header_give(thanks) == "/give"

    vars(g).clear()
    checkout = submit_gift(app.test_client(), "twenty").headers["Location"]
    checkout_page = page_of(client, checkout)
    assert "Sandbox checkout" in checkout_page
    assert GIVE_BAR not in checkout_page

    staff = app.test_client()
    sign_in_as(staff, make_person("fundraiser@levantwire.example", roles=(Role.FUNDRAISER,)))
    for url in ("/staff/", "/staff/campaigns", "/staff/campaigns/twenty/preview"):
        page = page_of(staff, url)
        assert GIVE_BAR not in page, url
        assert header_give(page) in ("/give", "#give-heading")


def test_the_favicon_is_served_and_named(app, client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/vnd.microsoft.icon"
        assert response.cache_control.max_age == 86400
        body = response.get_data()
    assert body == (Path(app.static_folder) / "favicon.ico").read_bytes()
    assert body[:4] == b"\x00\x00\x01\x00"  # an icon file's header
    assert '<link rel="icon" href="/favicon.ico"' in page_of(client, "/")


def test_the_pay_button_and_the_secure_payment_line(client):
    """Without the script the button says "Give" (the script adds the total, which the browser
    tests check); beside it, the secure-payment line with its lock, hidden from screen readers."""
    make_campaign("twenty")
    page = page_of(client, "/campaigns/twenty")
    assert re.search(r"<button [^>]*data-submit>Give</button>", page)
    assert "Continue to secure payment" not in page
    secure = re.search(r'<p class="secure-note">(.*?)</p>', page, re.S).group(1)
    assert re.match(r'<svg class="lock-icon" aria-hidden="true" focusable="false"', secure)
    text = re.sub(r"<svg.*?</svg>|<[^>]+>", "", secure, flags=re.S)
    assert " ".join(text.split()) == ("Secure payment. You enter your card details on our "
                                      "payment provider's secure page; they never reach us.")
