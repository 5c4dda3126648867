"""Account mail through a real SMTP server on loopback (aiosmtpd), and through the outbox
folder: the message is well formed, and its link works."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest

from tests.support.accounts import PASSWORD, link_in, make_account, post_form
from tests.support.smtp import smtp_server


@pytest.fixture
def smtp(make_app, database_url, app):
    with smtp_server() as (controller, inbox):
        yield make_app(database_url, MAIL_URL=f"smtp://127.0.0.1:{controller.port}"), inbox


def test_sign_in_link_by_smtp(smtp, outbox):
    smtp_app, inbox = smtp
    make_account()
    client = smtp_app.test_client()
    assert post_form(client, "/account/signin/link", email="noa@example.org").status_code == 303
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["noa@example.org"]
    assert envelope.mail_from == "giving@levantwire.example"
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"] == "Your sign-in link"
    assert message.get_body(("html",)) is not None
    link = link_in(message, "/account/link/")
    assert post_form(client, link).status_code == 303
    assert client.get("/account").status_code == 200
    assert outbox() == []  # SMTP replaced the folder


def test_sign_up_and_reset_mail_by_smtp(smtp):
    smtp_app, inbox = smtp
    client = smtp_app.test_client()
    post_form(client, "/account/signup", email="dana@example.org", password=PASSWORD,
              name="Dana Cohen")
    post_form(client, "/account/reset", email="dana@example.org")
    subjects = [message_from_bytes(e.content, policy=policy.default)["Subject"]
                for e in inbox.messages]
    assert subjects == ["Confirm your email address to finish your account",
                        "Reset your password"]


def test_account_mail_in_the_outbox_folder(app, client, outbox):
    make_account()
    post_form(client, "/account/reset", email="noa@example.org")
    [message] = outbox()
    assert message["From"] == "Levant Wire <giving@levantwire.example>"
    assert message["To"] == "noa@example.org"
    text = message.get_body(("plain",)).get_content()
    assert "Hello Noa Levi" in text and "60 minutes" in text
    assert re.search(r"http://donate\.test/account/reset/[\w.-]+", text)
