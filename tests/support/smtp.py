"""A real SMTP server on loopback (aiosmtpd), for the tests of what the app sends over the
wire rather than into the outbox folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from tests.support.pgcluster import free_port


class Inbox:
    """Accepts everything except the addresses in ``refuse``; counts SMTP sessions."""

    def __init__(self, refuse=()):
        self.messages = []
        self.sessions = 0
        self.refuse = set(refuse)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"

    def parsed(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.messages]


@contextmanager
def smtp_server(**inbox_options) -> Iterator[tuple[Controller, Inbox]]:
    """An SMTP server on 127.0.0.1 (``controller.port``) delivering into an :class:`Inbox`,
    until the block ends."""
    inbox = Inbox(**inbox_options)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()
