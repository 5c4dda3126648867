"""Request size limits: a form larger than MAX_CONTENT_LENGTH, and a webhook larger than
WEBHOOK_MAX_BYTES, get a 413 with a page (or JSON) that says so, refused on their
Content-Length before the body is read, and nothing is written.

Sent through the test client, and as a client would: over HTTP to the app served by Werkzeug on
loopback, the whole body (a client that sends it all, or stops once the answer comes), and
only the headers and a first chunk (the answer must come without the rest: nothing waited to
read it).
"""

from __future__ import annotations

import http.client
import io
import json
import re
import selectors
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.campaigns.models import Campaign
from app.extensions import db
from app.giving.models import Gift
from app.payments.models import ProviderEvent
from app.payments.providers import current_provider
from tests.conftest import BASE_CONFIG, migrated_url
from tests.factories import make_campaign
from tests.support.flow import donation_form, hidden_value
from tests.support.servers import serving

MB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def gift_fields(hidden: dict) -> dict:
    return {**hidden, "amount_choice": "2500", "frequency": "one_time", "name": "Noa Levi",
            "email": "noa@example.org"}


class PaddingStream(io.RawIOBase):
    """``size`` bytes of padding, made as they are read, counting how many were."""

    def __init__(self, size: int):
        self.size = size
        self.position = 0
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b" " * n
        self.position += n
        self.read_so_far += n
        return n


# -- the test client ------------------------------------------------------------------------


@pytest.fixture
def campaign(app):
    return make_campaign("twenty")


def test_a_10_mb_form_is_413_and_writes_nothing(client, campaign):
    fields = gift_fields(donation_form(client, "twenty"))
    body = urlencode({**fields, "padding": "a" * (10 * MB)})
    response = client.post("/campaigns/twenty/give", data=body, content_type=FORM)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Too much was sent" in page and "larger than the 256 kB we accept" in page
    assert count(Gift) == 0
    # The same form without the padding is taken: the size alone was refused.
    assert client.post("/campaigns/twenty/give", data=urlencode(fields),
                       content_type=FORM).status_code == 303
    assert count(Gift) == 1


def multipart(fields: dict, upload: bytes | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends it, and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    if upload is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="upload"; '
                     'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
                     + upload + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_a_10_mb_upload_to_the_donation_form_is_413_and_writes_nothing(client, campaign):
    fields = gift_fields(donation_form(client, "twenty"))
    body, content_type = multipart(fields, b"x" * (10 * MB))
    response = client.post("/campaigns/twenty/give", data=body, content_type=content_type)
    assert response.status_code == 413
    assert count(Gift) == 0
    body, content_type = multipart(fields)
    assert client.post("/campaigns/twenty/give", data=body,
                       content_type=content_type).status_code == 303


def test_a_multipart_text_field_over_max_form_memory_size_is_413(client, campaign):
    fields = gift_fields(donation_form(client, "twenty"))
    fields["comment"] = "a" * (200 * 1024)  # under MAX_CONTENT_LENGTH, over one field's limit
    body, content_type = multipart(fields)
    response = client.post("/campaigns/twenty/give", data=body, content_type=content_type)
    assert response.status_code == 413
    assert count(Gift) == 0


def test_a_20_mb_webhook_is_refused_before_a_byte_is_read(client):
    stream = PaddingStream(20 * MB)
    response = client.post("/webhooks/sandbox", input_stream=stream,
                           content_length=20 * MB, content_type="application/json",
                           headers=current_provider().sign(b"{}"))
    assert response.status_code == 413
    assert response.get_json() == {"error": "body too large"}
    assert stream.read_so_far == 0
    assert count(ProviderEvent) == 0


def test_webhooks_take_more_than_a_form_up_to_their_own_limit(app, client, campaign):
    """A 300 kB event (Stripe's can be a few hundred kB) is over the forms' limit and is
    taken; one over WEBHOOK_MAX_BYTES is not."""
    response = client.post("/campaigns/twenty/give",
                           data=urlencode(gift_fields(donation_form(client, "twenty"))),
                           content_type=FORM)
    assert response.status_code == 303
    provider = current_provider()
    session = provider.load_session(response.headers["Location"].rsplit("/", 1)[1])
    [event] = provider.completion_events(session, name="Noa", now=time.time())
    for size, status in ((300 * 1024, 200), (app.config["WEBHOOK_MAX_BYTES"] + 1, 413)):
        event["id"] = f"evt_padded_{size}"
        payload = json.dumps(event).encode()
        payload += b" " * (size - len(payload))
        answer = client.post("/webhooks/sandbox", data=payload, headers=provider.sign(payload),
                             content_type="application/json")
        assert answer.status_code == status, size
    assert count(ProviderEvent) == 1


# -- over HTTP, as a client sends it ----------------------------------------------------------


@dataclass
class Served:
    app: Flask
    host: str
    port: int

    def gifts_to(self, slug: str) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(Gift).join(Campaign)
                                     .where(Campaign.slug == slug))

    def events(self) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(ProviderEvent))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request) -> Iterator[Served]:
    """The app on its own migrated database (data committed), served on 127.0.0.1."""
    url = migrated_url(request, request.param, "limits")
    # Requests name 127.0.0.1, like a browser's on this machine.
    config = {k: v for k, v in BASE_CONFIG.items() if k not in ("SERVER_NAME", "PUBLIC_URL")}
    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": url,
                      "PUBLIC_URL": "http://127.0.0.1:5000",
                      "MAIL_OUTBOX_DIR": str(request.getfixturevalue("tmp_path_factory")
                                             .mktemp("limits-outbox"))})
    with serving(app) as server:
        app.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
        yield Served(app=app, host="127.0.0.1", port=server.server_port)


@pytest.fixture
def slug(served) -> str:
    slug = f"limits-{uuid.uuid4().hex[:10]}"
    with served.app.app_context():
        make_campaign(slug)
        db.session.commit()
    return slug


def form_page(served: Served, slug: str) -> tuple[str, dict]:
    """The session cookie and the donation form's hidden fields, from a real GET."""
    connection = http.client.HTTPConnection(served.host, served.port, timeout=10)
    connection.request("GET", f"/campaigns/{slug}")
    response = connection.getresponse()
    html = response.read().decode()
    assert response.status == 200
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    connection.close()
    hidden = {name: hidden_value(html, name) for name in (
        "csrf_token", "submission_key", "currency", "utm_source", "utm_medium",
        "utm_campaign", "utm_term", "utm_content")}
    return cookie, hidden


def send(served: Served, path: str, headers: dict, body_parts: Iterator[bytes], *,
         stop_early: bool = True) -> tuple[int, str, int]:
    """POST over a socket as a client does: the headers (with Content-Length), then the body
    chunk by chunk; with ``stop_early``, stop sending once the server has answered (as
    browsers do), and whatever happens to the rest, read the answer. Returns (status, body,
    bytes of the body sent)."""
    sock = socket.create_connection((served.host, served.port), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: {served.host}:{served.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode("latin-1"))
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    sent = 0
    try:
        for part in body_parts:
            if stop_early and selector.select(timeout=0):
                break  # answered already
            sock.sendall(part)
            sent += len(part)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed its side once it had answered
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read().decode("utf-8", "replace")
    sock.close()
    return response.status, body, sent


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_a_10_mb_form_over_http_is_413_and_writes_nothing(served, slug):
    cookie, hidden = form_page(served, slug)
    fields = urlencode(gift_fields(hidden)).encode()
    body = fields + b"&padding=" + b"a" * (10 * MB)
    headers = {"Content-Type": FORM, "Content-Length": str(len(body)), "Cookie": cookie}
    status, page, _ = send(served, f"/campaigns/{slug}/give", headers, chunks(body),
                           stop_early=False)
    assert status == 413 and "Too much was sent" in page
    assert served.gifts_to(slug) == 0
    # The same request without the padding records the gift: only the size was refused.
    small = {**headers, "Content-Length": str(len(fields))}
    status, _, _ = send(served, f"/campaigns/{slug}/give", small, iter([fields]))
    assert status == 303
    assert served.gifts_to(slug) == 1


def test_a_10_mb_upload_over_http_is_413_and_writes_nothing(served, slug):
    cookie, hidden = form_page(served, slug)
    body, content_type = multipart(gift_fields(hidden), b"x" * (10 * MB))
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
               "Cookie": cookie}
    status, page, _ = send(served, f"/campaigns/{slug}/give", headers, chunks(body))
    assert status == 413 and "Too much was sent" in page
    assert served.gifts_to(slug) == 0


@pytest.mark.parametrize("path, content_type", [
    ("/webhooks/sandbox", "application/json"),
    ("/campaigns/{slug}/give", FORM),
])
def test_the_answer_comes_before_the_body_is_sent(served, slug, path, content_type):
    """Only the headers (Content-Length: 20 MB) and a first chunk are sent, then the client
    waits: the 413 arrives, so nothing waited to read the rest."""
    headers = {"Content-Type": content_type, "Content-Length": str(20 * MB)}
    if "{slug}" in path:
        cookie, _ = form_page(served, slug)
        headers["Cookie"] = cookie
    with served.app.app_context():
        headers.update(served.app.extensions["payment_provider"].sign(b"{}"))
    events = served.events()
    status, body, sent = send(served, path.format(slug=slug), headers,
                              iter([b"{" + b" " * (64 * 1024)]))
    assert status == 413 and sent < 20 * MB
    assert served.gifts_to(slug) == 0 and served.events() == events


def chunked(payload: bytes) -> bytes:
    """``payload`` in Transfer-Encoding: chunked."""
    return b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                    for part in chunks(payload)) + b"0\r\n\r\n"


def test_a_form_sent_in_chunks_is_413_not_cut_short(served, slug):
    """Without a Content-Length (Transfer-Encoding: chunked) the limit holds while reading:
    the form is refused, not read up to the limit and taken without the rest."""
    cookie, hidden = form_page(served, slug)
    payload = urlencode(gift_fields(hidden)).encode() + b"&padding=" + b"a" * (10 * MB)
    headers = {"Content-Type": FORM, "Transfer-Encoding": "chunked", "Cookie": cookie}
    status, page, _ = send(served, f"/campaigns/{slug}/give", headers,
                           chunks(chunked(payload)))
    assert status == 413 and "Too much was sent" in page
    assert served.gifts_to(slug) == 0


def test_a_webhook_sent_in_chunks_is_cut_off_at_its_limit(served):
    """Without a Content-Length the limit holds while reading."""
    limit = served.app.config["WEBHOOK_MAX_BYTES"]
    payload = b"{" + b" " * (2 * limit)
    body = chunked(payload)
    with served.app.app_context():
        signature = served.app.extensions["payment_provider"].sign(payload)
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
               **signature}
    events = served.events()
    status, body_text, _ = send(served, "/webhooks/sandbox", headers, chunks(body))
    assert status == 413, body_text
    assert re.search(r"too large", body_text)
    assert served.events() == events


def test_the_page_for_a_413_names_the_limit_and_keeps_the_site_layout(client, campaign):
    response = client.post("/campaigns/twenty/give", data="a=" + "b" * (300 * 1024),
                           content_type=FORM)
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert re.search(r"<h1[^>]*>\s*Too much was sent", html)
    assert "Nothing was saved" in html and "Go to the home page" in html
