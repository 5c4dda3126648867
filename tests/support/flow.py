"""Drives the giving flow through the Flask test client, as a browser would."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import select

from app.extensions import db
from app.giving.models import Gift
from tests.factories import make_campaign


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or re.search(
        rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


class _FormReader(HTMLParser):
    """What a browser would send from the page's donation form: each control's current value
    (a checked radio's or checkbox's, a textarea's text, a select's chosen option)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._in_form = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "donation-form" in (a.get("class") or ""):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.values[name] = a.get("value", "on")
            else:
                self.values[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value") or ""

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "textarea" and self._textarea:
            # A newline right after <textarea> is not part of its text (HTML's parsing rule).
            text = self.values[self._textarea]
            for newline in ("\r\n", "\n"):
                if text.startswith(newline):
                    text = text[len(newline):]
                    break
            self.values[self._textarea] = text
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_values(html: str) -> dict[str, str]:
    """The donation form's values as the page renders them (an unchecked box is absent)."""
    reader = _FormReader()
    reader.feed(html)
    return reader.values


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


def pending_gift(client, slug: str = "twenty"):
    """A live campaign ``slug`` and a $50 gift submitted to it, waiting for its payment."""
    make_campaign(slug)
    response = submit_gift(client, slug, amount="5000")
    assert response.status_code == 303
    return db.session.scalar(select(Gift))


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
