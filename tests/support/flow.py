"""Drives the giving flow through the Flask test client, as a browser would."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or re.search(
        rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def donation_form(client, slug: str, query: str = "") -> dict:
    """The donation form's hidden fields, as the campaign page renders them."""
    page = client.get(f"/campaigns/{slug}{query}")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    fields = {"csrf_token": hidden_value(html, "csrf_token"),
              "submission_key": hidden_value(html, "submission_key"),
              "currency": hidden_value(html, "currency")}
    for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        fields[name] = hidden_value(html, name)
    return fields


def submit_gift(client, slug: str, *, amount: str = "2500", other: str = "",
                frequency: str = "one_time", query: str = "", **fields):
    data = donation_form(client, slug, query)
    data.update(amount_choice=amount, other_amount=other, frequency=frequency,
                name="Noa Levi", email="noa@example.org")
    data.update(fields)
    return client.post(f"/campaigns/{slug}/give", data=data)


def pay(client, checkout_url: str, card: str = "4242 4242 4242 4242", **fields):
    path = urlsplit(checkout_url).path
    page = client.get(path)
    assert page.status_code == 200
    data = {"csrf_token": hidden_value(page.get_data(as_text=True), "csrf_token"),
            "name": "Noa Levi", "number": card, "expiry": "12 / 34", "cvc": "123"}
    data.update(fields)
    return client.post(path, data=data)


def give(client, slug: str, card: str = "4242 4242 4242 4242", **form_fields):
    """Submit the form and pay; returns the response of the payment page's POST."""
    response = submit_gift(client, slug, **form_fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return pay(client, response.headers["Location"], card)
