"""Text that is not UTF-8, or that holds control characters, is refused, never stored: on the
donation form with a message beside the field, on any other form with a 400 page that says so.
A name sent as ``%ff%fe%80abc`` used to be stored as the text "%FF%FE%80abc"; one with a NUL
was stored on SQLite and a 500 on PostgreSQL, which refuses NUL in text. An address (path or
query) with a control character is refused before any view reads it."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import func, select

from app.accounts.models import Supporter
from app.extensions import db
from app.giving.models import Gift
from tests.factories import make_campaign
from tests.support.accounts import csrf_token
from tests.support.flow import donation_form

FORM = "application/x-www-form-urlencoded"
GARBLED = "%ff%fe%80abc"  # not UTF-8 once percent-decoded
MESSAGE = "We could not read some of the characters in this. Please type it again."


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture(autouse=True)
def campaign(app):
    return make_campaign("twenty")


def gift_body(client, **raw) -> str:
    """The donation form's fields, urlencoded, with ``raw`` values put in as given (already
    percent-encoded, as a client that sends bytes that are not UTF-8 would)."""
    fields = {**donation_form(client, "twenty"), "amount_choice": "2500",
              "frequency": "one_time", "name": "Noa Levi", "email": "noa@example.org"}
    for name in raw:
        fields.pop(name, None)
    return "&".join([urlencode(fields), *(f"{name}={value}" for name, value in raw.items())])


def error_beside(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert match, f"no error beside {field}"
    return match.group(1)


@pytest.mark.parametrize("field", ["name", "email", "comment", "dedication_name",
                                   "other_amount"])
def test_the_donation_form_says_so_beside_the_field(client, field):
    extra = {"amount_choice": "other"} if field == "other_amount" else {}
    body = gift_body(client, **{field: GARBLED}, **extra)
    response = client.post("/campaigns/twenty/give", data=body, content_type=FORM)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_beside(html, field) == MESSAGE
    assert count(Gift) == 0 and count(Supporter) == 0
    assert "%FF%FE%80abc" not in html  # shown as what arrived, not as typed text


def test_a_hidden_field_that_is_not_utf8_is_refused_too(client):
    response = client.post("/campaigns/twenty/give", data=gift_body(client, utm_source=GARBLED),
                           content_type=FORM)
    assert response.status_code == 422
    assert MESSAGE in response.get_data(as_text=True)
    assert count(Gift) == 0


def test_raw_bytes_and_multipart_forms_are_refused_the_same(client):
    """Not percent-encoded at all, and in a multipart form (werkzeug's own U+FFFD)."""
    raw = gift_body(client, name="").encode() + b"\xff\xfe\x80abc"  # name= is last
    response = client.post("/campaigns/twenty/give", data=raw, content_type=FORM)
    assert response.status_code == 422
    assert error_beside(response.get_data(as_text=True), "name") == MESSAGE
    boundary = uuid.uuid4().hex
    fields = {**donation_form(client, "twenty"), "amount_choice": "2500",
              "frequency": "one_time", "email": "noa@example.org"}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    .encode() for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode()
             + b"\xff\xfe\x80abc\r\n" + f"--{boundary}--\r\n".encode())
    response = client.post("/campaigns/twenty/give", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 422
    assert error_beside(response.get_data(as_text=True), "name") == MESSAGE
    assert count(Gift) == 0


@pytest.mark.parametrize("name", ["נועה לוי", "نور الهدى", "Zoë %FF 100%"])
def test_text_in_any_script_and_a_typed_percent_are_taken_as_typed(client, name):
    body = gift_body(client, name=quote(name, safe=""))
    response = client.post("/campaigns/twenty/give", data=body, content_type=FORM)
    assert response.status_code == 303
    assert db.session.scalar(select(Gift.donor_name)) == name


def test_other_forms_answer_400_with_a_page_that_says_so(client):
    """The sign-up form has no message of its own for it: the request-level check answers,
    before the view stores the name."""
    fields = {"csrf_token": csrf_token(client, "/account/signup"), "email": "noa@example.org",
              "password": "a long enough passphrase"}
    body = urlencode(fields) + f"&name={GARBLED}"
    response = client.post("/account/signup", data=body, content_type=FORM)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "could not be read: it was not sent as UTF-8" in html
    assert "Nothing was saved" in html
    assert count(Supporter) == 0
    # The same form with the name as typed creates the account: only the bytes were refused.
    # (Once the answer is sent: read in full, as a server sends it.)
    fields["name"] = "Noa Levi"
    assert client.post("/account/signup", data=urlencode(fields), content_type=FORM,
                       buffered=True).status_code == 303
    assert db.session.scalar(select(Supporter.name)) == "Noa Levi"


@pytest.mark.parametrize("value", ["a%00b", "a%1b%5b31mb", "a%7fb", "a%08b"],
                         ids=["NUL", "escape", "DEL", "backspace"])
def test_control_characters_are_refused_beside_the_donation_form_field(client, value):
    response = client.post("/campaigns/twenty/give", data=gift_body(client, name=value),
                           content_type=FORM)
    assert response.status_code == 422
    assert error_beside(response.get_data(as_text=True), "name") == MESSAGE
    assert count(Gift) == 0 and count(Supporter) == 0


def test_tabs_and_line_breaks_are_text(client):
    note = "Line one\r\n\tLine two"
    body = gift_body(client, comment=quote(note, safe=""))
    assert client.post("/campaigns/twenty/give", data=body, content_type=FORM).status_code == 303
    assert db.session.scalar(select(Gift.comment)) == note


def test_other_forms_refuse_control_characters_with_the_400_page(client):
    """Any field counts, one the view does not read too (it might, tomorrow)."""
    fields = {"csrf_token": csrf_token(client, "/account/signup"), "email": "noa@example.org",
              "password": "a long enough passphrase", "name": "Noa Levi"}
    for extra in ("name=Noa%00Levi", "unused=%1b"):
        body = urlencode({k: v for k, v in fields.items() if not extra.startswith(k)})
        response = client.post("/account/signup", data=f"{body}&{extra}", content_type=FORM)
        assert response.status_code == 400, extra
        assert "held characters that are not text" in response.get_data(as_text=True)
        assert count(Supporter) == 0


@pytest.mark.parametrize("address, status", [
    ("/campaigns/twenty%00", 404),
    ("/thanks/a%00b", 404),
    ("/campaigns/twenty?utm_source=a%00b", 400),
    ("/account/signin?next=%1b", 400),
])
def test_an_address_with_a_control_character_is_refused(client, address, status):
    assert client.get(address).status_code == status
