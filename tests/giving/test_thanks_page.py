"""The thank-you page: share links with no third-party script, the offer to make a one-time
gift monthly (through the form and the checkout, never charged from here), and its wording."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import g
from sqlalchemy import func, select

from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency, Gift, GiftStatus
from app.giving.sharing import share_links
from app.payments.models import Payment
from tests.factories import make_campaign
from tests.support.flow import form_values, give, submit_gift

CAMPAIGN_URL = "http://donate.test/campaigns/twenty"


@pytest.fixture
def campaign(app):
    return make_campaign("twenty", title="Twenty years of reporting")


def page_of(client, url: str) -> str:
    g.pop("csrf_token", None)  # a new request (the tests' app context outlives requests)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def thanks_page(client, **form_fields) -> tuple[Gift, str]:
    g.pop("csrf_token", None)
    paid = give(client, "twenty", **form_fields)
    assert paid.status_code == 303
    gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    assert gift.status is GiftStatus.PAID
    return gift, page_of(client, urlsplit(paid.headers["Location"]).path)


def links(page: str) -> dict[str, str]:
    """data-share name -> href."""
    return {name: html.unescape(href) for href, name in
            re.findall(r'<a class="button" href="([^"]+)" data-share="(\w+)"', page)}


def monthly_offer(page: str) -> str | None:
    match = re.search(r'data-monthly-offer>.*?<a class="button button-primary" href="([^"]+)"',
                      page, re.S)
    return html.unescape(match.group(1)) if match else None


def test_share_links_share_the_campaign_page_without_third_party_scripts(client, campaign):
    _, page = thanks_page(client)
    shared = links(page)
    assert set(shared) == {"x", "facebook", "whatsapp", "email"}

    x = urlsplit(shared["x"])
    assert (x.scheme, x.netloc, x.path) == ("https", "twitter.com", "/intent/tweet")
    assert parse_qs(x.query)["url"] == [CAMPAIGN_URL]
    assert "Twenty years of reporting" in parse_qs(x.query)["text"][0]
    facebook = urlsplit(shared["facebook"])
    assert (facebook.netloc, facebook.path) == ("www.facebook.com", "/sharer/sharer.php")
    assert parse_qs(facebook.query) == {"u": [CAMPAIGN_URL]}
    whatsapp = urlsplit(shared["whatsapp"])
    assert whatsapp.netloc == "wa.me"
    assert parse_qs(whatsapp.query)["text"][0].endswith(" " + CAMPAIGN_URL)
    mail = urlsplit(shared["email"])
    assert mail.scheme == "mailto" and mail.path == ""
    assert unquote(parse_qs(mail.query)["body"][0]).endswith("\r\n\r\n" + CAMPAIGN_URL)
    assert parse_qs(mail.query)["subject"] == ["Join me in supporting Levant Wire"]

    # The web pages open in a new tab, and say so; the mail link opens the mail app.
    for name in ("x", "facebook", "whatsapp"):
        assert re.search(rf'data-share="{name}" target="_blank" rel="noopener noreferrer">'
                         r'[^<]+<span class="visually-hidden"> \(opens in a new tab\)', page)
    assert 'data-share="email">Share by email</a>' in page

    # Copying: the link itself on the page, and a button the script reveals.
    assert f'<input id="share-url" type="url" value="{CAMPAIGN_URL}" readonly data-copy-source>' \
        in page
    assert '<label for="share-url">' in page
    assert re.search(r"<button [^>]*data-copy-button hidden>Copy link</button>", page)
    # Our own script only.
    assert re.findall(r"<script[^>]*src=\"([^\"]+)\"", page) == ["/static/js/app.js"]
    assert "<iframe" not in page


def test_share_link_encoding():
    [x, facebook, whatsapp, email] = share_links("https://levantwire.example/campaigns/a b?x=1&y=2",
                                                 title="Dawn & dusk", org_name="Levant Wire")
    for link in (x, facebook, whatsapp, email):
        query = urlsplit(link.url).query
        assert "+" not in query and " " not in query  # spaces as %20, for mail clients too
        assert "a%20b%3Fx%3D1%26y%3D2" in query  # the URL is one parameter, not several
    assert parse_qs(urlsplit(x.url).query)["text"][0].startswith(
        "I just gave to “Dawn & dusk” at Levant Wire")
    assert [link.new_tab for link in (x, facebook, whatsapp, email)] == [True, True, True, False]


def test_a_one_time_gift_is_offered_monthly_through_the_form(app, client, campaign):
    gift, page = thanks_page(client, amount="5000", cover_fee="y")
    offer = monthly_offer(page)
    assert offer is not None
    assert "Give $50.00 monthly</a>" in page
    url = urlsplit(offer)
    assert url.path == "/campaigns/twenty"
    assert parse_qs(url.query) == {
        "frequency": ["monthly"], "amount": ["50.00"], "gift": [gift.public_id],
        "utm_source": ["thank-you"], "utm_medium": ["monthly-offer"]}

    # Following it is not giving: nothing new is charged or even started.
    payments = db.session.scalar(select(func.count()).select_from(Payment))
    gifts = db.session.scalar(select(func.count()).select_from(Gift))
    form_page = client.get(offer)
    assert form_page.status_code == 200
    assert "no-store" in form_page.headers["Cache-Control"]
    values = form_values(form_page.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Gift)) == gifts

    # The form, filled in: monthly, the same amount, the donor's details in their own browser.
    assert (values["frequency"], values["amount_choice"], values["name"], values["email"],
            values.get("cover_fee")) == ("monthly", "5000", "Noa Levi", "noa@example.org", "y")
    assert "You left the payment page" not in form_page.get_data(as_text=True)

    # Sent, it goes to the checkout like any gift: pending until the donor pays there.
    response = client.post("/campaigns/twenty/give", data=values)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sandbox/checkout/")
    monthly = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    assert (monthly.frequency, monthly.amount, monthly.status, monthly.utm_source,
            monthly.utm_medium) == (Frequency.MONTHLY, 5000, GiftStatus.PENDING, "thank-you",
                                    "monthly-offer")
    assert db.session.scalar(select(func.count()).select_from(Payment)) == payments

    # In another browser the link still chooses monthly and the amount, and nothing else.
    stranger = page_of(app.test_client(), offer)
    values = form_values(stranger)
    assert (values["frequency"], values["amount_choice"], values["name"], values["email"]) == (
        "monthly", "5000", "", "")
    assert "noa@example.org" not in stranger


def test_an_amount_not_suggested_is_offered_as_typed(client, campaign):
    _, page = thanks_page(client, amount="other", other="42.75")
    assert "Give $42.75 monthly</a>" in page
    values = form_values(page_of(client, monthly_offer(page)))
    assert (values["amount_choice"], values["other_amount"]) == ("other", "42.75")


@pytest.mark.parametrize("frequency", ["monthly", "annual"])
def test_no_offer_for_a_recurring_gift(client, campaign, frequency):
    _, page = thanks_page(client, frequency=frequency)
    assert monthly_offer(page) is None and "data-monthly-offer" not in page
    assert links(page)  # sharing is for every gift


def test_no_offer_once_the_campaign_has_ended(client, campaign):
    gift, _ = thanks_page(client)
    campaign.ends_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    page = page_of(client, f"/thanks/{gift.public_id}")
    assert "Thank you, Noa." in page
    assert "data-monthly-offer" not in page


def test_no_offer_while_the_payment_is_being_confirmed(client, campaign):
    response = submit_gift(client, "twenty")
    assert response.status_code == 303
    gift = db.session.scalars(select(Gift).order_by(Gift.id.desc())).first()
    page = page_of(client, f"/thanks/{gift.public_id}")
    assert "We are confirming your payment" in page
    assert "data-monthly-offer" not in page and "data-share" not in page


def test_the_account_hint_reads_well(client, campaign):
    _, once = thanks_page(client)
    hint = re.search(r"<p data-account-hint>(.*?)</p>", once, re.S).group(1)
    assert hint.startswith("Your gifts and receipts are in your account: ")
    _, monthly = thanks_page(client, frequency="monthly")
    hint = re.search(r"<p data-account-hint>(.*?)</p>", monthly, re.S).group(1)
    assert hint.startswith("Your gifts, receipts and monthly gift are in your account: ")
