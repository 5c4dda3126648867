"""Outgoing mail: queued in the database inside the transaction, delivered after the commit.

A message is stored once under a ``dedupe_key`` (``receipt:<gift id>``), so replays and retries
never send a second copy. Delivery goes to ``.eml`` files in the outbox folder by default, or to
the SMTP server named by ``MAIL_URL`` (``smtp://user:pass@host:port``, ``smtps://`` for TLS,
``?starttls=1`` to upgrade).
"""

from __future__ import annotations

import binascii
import os
import smtplib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import click
from flask import Flask, current_app, render_template
from flask.cli import AppGroup
from sqlalchemy import Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app import jobs
from app.db import UTCDateTime, claimant_gone, insert, this_process, utcnow, writing_command
from app.extensions import db

# Header lines may be up to 998 characters (RFC 5322). At the default 78, a header that has no
# space to fold at, such as a List-Unsubscribe URL, is turned into RFC 2047 encoded words,
# which mail clients do not decode there: the unsubscribe button would not work.
LONG_HEADERS = SMTP.clone(max_line_length=998)


class _ReusedHeaders(EmailPolicy):
    """``email``'s policy, remembering the headers it has parsed and folded: most of a
    message's (MIME-Version, each part's Content-Type and Content-Transfer-Encoding) are the
    same in every message, and parsing and folding them was about half of building one (a
    webhook worker builds a receipt per event). The same functions, so the same bytes."""

    def header_store_parse(self, name, value):
        if isinstance(value, str) and not hasattr(value, "name") and \
                len(value.splitlines()) <= 1:  # else refused, as email refuses it
            return name, _parsed_header(self, name, value)
        return super().header_store_parse(name, value)

    def fold(self, name, value):
        return _folded_header(self, name, value, type(value))


@lru_cache(maxsize=512)
def _parsed_header(policy: EmailPolicy, name: str, value: str):
    return policy.header_factory(name, value)


@lru_cache(maxsize=512)
def _folded_header(policy: EmailPolicy, name: str, value: str, kind: type) -> str:
    return EmailPolicy.fold(policy, name, value)


class _HeaderClasses(HeaderRegistry):
    """``email``'s registry of header classes, making each once: ``email``'s makes a new class
    (``type(...)``) for every header parsed, which took a fifth of building a message, and
    a header of a new class missed :func:`_folded_header`'s memory. The same classes."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


#: How :func:`build_message` makes a message, and writes it out (as ``SMTP`` and
#: ``LONG_HEADERS``).
_BUILD = _ReusedHeaders(header_factory=_HeaderClasses())
_SMTP = _BUILD.clone(linesep="\r\n")
_LONG_HEADERS = _SMTP.clone(max_line_length=998)


class OutboundEmail(db.Model):
    __tablename__ = "outbound_email"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When a sender took it to hand to the transport (:func:`_claim`), and which process
    # (``app.db.this_process``); cleared when it records the outcome.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))


def queue_email(*, to: str, subject: str, template: str, dedupe_key: str,
                headers: Mapping[str, str] | None = None,
                attachments: Sequence[tuple[str, str, bytes]] = (),
                deliver_after_commit: bool = True, **context) -> bool:
    """Render ``email/<template>.txt`` and ``.html`` and queue them for delivery after commit.

    ``headers`` are added to (or replace) the standard ones, e.g. ``From`` or
    ``List-Unsubscribe``; without a ``From``, the transport that delivers the message names our
    sender (:func:`ready_to_send`). ``attachments`` are ``(filename, mimetype, bytes)``, e.g. a PDF
    statement. With ``deliver_after_commit=False`` the caller delivers the message itself
    (``deliver_batch``, for thousands at once). Returns False, and queues nothing, when a
    message with this key already exists.
    """
    if db.session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)):
        return False
    message = _render(to=to, subject=subject, template=template, headers=headers,
                      attachments=attachments, **context)
    return store_email(to=to, subject=subject, dedupe_key=dedupe_key, message=message,
                       deliver_after_commit=deliver_after_commit)


def queue_emails(mails: Sequence[Mapping]) -> list[int]:
    """Queue many messages at once, each given as :func:`queue_email`'s keyword arguments (the
    receipts of a batch of gifts paid together): rendered, then stored in one insert and
    delivered after the commit. Their keys are not looked up first: one already used is
    skipped by the insert (``ON CONFLICT``), rendered for nothing. Returns the ids queued."""
    return store_emails([(mail["to"], mail["subject"], mail["dedupe_key"], _render(**mail))
                         for mail in mails])


def _render(*, to: str, subject: str, template: str, dedupe_key: str | None = None,
            headers: Mapping[str, str] | None = None,
            attachments: Sequence[tuple[str, str, bytes]] = (), **context) -> str:
    return build_message(
        sender=None, to=to, subject=subject,
        text=render_template(f"email/{template}.txt", **context),
        html=render_template(f"email/{template}.html", **context),
        headers=headers, attachments=attachments)


@dataclass(frozen=True)
class Mailer:
    """What services need to send mail, built from the settings by :func:`mailer_from_config`
    and passed in by the views, commands and jobs that own the app (:func:`current_mailer`).

    ``sender``: the ``From`` of our mail (``MAIL_FROM``); ``transport``: where messages go
    (``MAIL_URL`` or the outbox), naming ``sender`` on those queued without a ``From``."""

    sender: str
    transport: OutboxTransport | SMTPTransport


def mailer_from_config(config: Mapping) -> Mailer:
    return Mailer(sender=config["MAIL_FROM"], transport=transport_from_config(config))


def contact_address(config: Mapping) -> str:
    """Where a reader writes to the organisation, named in mail they may not have asked for
    (the dedication note): ``ORG_CONTACT_EMAIL``, else ``MAIL_FROM``'s address. Templates
    have it as ``org_contact``."""
    return config.get("ORG_CONTACT_EMAIL") or parseaddr(config["MAIL_FROM"])[1]


def current_mailer() -> Mailer:
    """The app's mailer, for views, commands and jobs (services are given one). Built from the
    settings at each call: cheap (no connection is opened), and a changed setting holds."""
    return mailer_from_config(current_app.config)


def build_message(*, sender: str | None, to: str, subject: str, text: str, html: str,
                  headers: Mapping[str, str] | None = None,
                  attachments: Sequence[tuple[str, str, bytes]] = ()) -> str:
    """A message as stored and sent: the text and HTML alternatives, then any attachments.
    ``sender`` None (and no ``From`` in ``headers``): the ``From`` and ``Message-ID`` are the
    delivering transport's (:func:`ready_to_send`).

    Needs neither the app nor the database, so worker processes can build messages (the
    year-end statements: building one with a PDF costs more than the rest of queuing it).
    """
    fields: dict[str, tuple[str, str]] = {}  # by lower-case name, in the message's order
    if sender is not None:
        fields["from"] = ("From", sender)
    fields["to"] = ("To", to)
    fields["subject"] = ("Subject", " ".join(subject.split()))  # user text must not break it
    fields["date"] = ("Date", format_datetime(utcnow()))
    for name, value in (headers or {}).items():
        fields.pop(name.lower(), None)  # replaced, and put last
        fields[name.lower()] = (name, " ".join(value.split()))
    ctes = _cte(text), _cte(html)
    if (attachments or None in ctes or not _MIME_FIELDS.isdisjoint(fields)
            or BOUNDARY in text or BOUNDARY in html):
        return _built(fields, text, html, ctes, attachments,
                      _LONG_HEADERS if headers else _SMTP)
    return _written(fields, text, html, ctes, _LONG_HEADERS if headers else _SMTP)


#: Fields a message's ``headers`` may not give for :func:`_written` to write it.
_MIME_FIELDS = frozenset({"mime-version", "content-type", "content-transfer-encoding",
                          "message-id"})


def _built(fields: Mapping[str, tuple[str, str]], text: str, html: str,
           ctes: tuple[str | None, str | None], attachments: Sequence[tuple[str, str, bytes]],
           out: EmailPolicy) -> str:
    """The message built with ``email``'s objects, written out with the policy ``out``."""
    msg = EmailMessage(policy=_BUILD)
    for name, value in fields.values():
        msg[name] = value
    if msg["From"] is not None:
        msg["Message-ID"] = make_msgid(domain=_domain(msg["From"]))
    msg.set_content(text, cte=ctes[0])
    if BOUNDARY not in text and BOUNDARY not in html:
        msg.make_alternative(boundary=BOUNDARY)
    msg.add_alternative(html, subtype="html", cte=ctes[1])
    for filename, mimetype, data in attachments:
        maintype, _, subtype = mimetype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_string(policy=out)


def _written(fields: Mapping[str, tuple[str, str]], text: str, html: str,
             ctes: tuple[str, str], out: EmailPolicy) -> str:
    """What :func:`_built` makes of a message of text and HTML alone, each sent as it is or
    in base64 (:func:`_cte`), written out without building it: each header parsed and
    folded by the same policy, as ``email`` does (remembered, :class:`_ReusedHeaders`), the
    parts put together by hand (a tenth of a webhook worker's CPU went on ``email``'s
    objects). A test holds the two to the same bytes."""
    head = dict(fields)
    if "from" in head:
        head["message-id"] = ("Message-ID", make_msgid(
            domain=_domain(_BUILD.header_store_parse("From", head["from"][1])[1])))
    head["mime-version"] = ("MIME-Version", "1.0")
    head["content-type"] = ("Content-Type", f'multipart/alternative; boundary="{BOUNDARY}"')
    part = '--{}\r\nContent-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: {}\r\n'
    return "".join([
        *(_folded(name, value, out) for name, value in head.values()),
        "\r\n",
        part.format(BOUNDARY, "plain", ctes[0]), "\r\n", _body(text, ctes[0]),
        "\r\n", part.format(BOUNDARY, "html", ctes[1]), "MIME-Version: 1.0\r\n\r\n",
        _body(html, ctes[1]),
        f"\r\n--{BOUNDARY}--\r\n",
    ])


def _body(text: str, cte: str) -> str:
    """A part's text as ``email`` writes it: its lines ended by CRLF, as they are (7bit) or in
    base64 lines of 76 characters (``set_content``'s, for lines ended by LF)."""
    lines = text.encode().splitlines()
    if cte == "7bit":
        return "\r\n".join(line.decode() for line in lines) + "\r\n"
    data = b"\n".join(lines) + b"\n"
    step = _BUILD.max_line_length // 4 * 3
    return "".join(binascii.b2a_base64(data[at:at + step]).decode().replace("\n", "\r\n")
                   for at in range(0, len(data), step))


#: The boundary between a message's text and HTML, the same in every message where it is not
#: in either (else ``email`` makes one that is not, at random): its ``Content-Type`` is then
#: parsed once for all messages, and nothing is searched for a free one. No part's encoding
#: can make it: base64 has no ``-``, quoted-printable no ``==``; 7bit text is the text itself.
BOUNDARY = "===============newsfund-alternative=="


#: The longest line a message may hold (RFC 5322, 2.1.1).
MAX_LINE = 998


def _cte(text: str) -> str | None:
    """How a part's text is encoded:

    - ASCII, no line over :data:`MAX_LINE`: as it is (7bit), as Django has long sent it.
      ``email`` would encode quoted-printable every line over 78 characters (our HTML has
      them), in Python: a sixth of building a receipt's message;
    - not ASCII, its lines short, where ``email`` would store it as 8bit: base64, as it writes
      such a part out, but without copying the whole message (``deepcopy``) to encode it
      then: 40% of building one;
    - else ``email``'s own choice (None)."""
    longest = max(map(len, text.encode().splitlines()), default=0)
    if text.isascii():
        return "7bit" if longest <= MAX_LINE else None
    return "base64" if longest <= _BUILD.max_line_length else None


def store_email(*, to: str, subject: str, dedupe_key: str, message: str,
                deliver_after_commit: bool = True) -> bool:
    """Queue a message made by ``build_message`` under ``dedupe_key``; False, and nothing
    queued, when a message with that key exists."""
    return bool(store_emails([(to, subject, dedupe_key, message)],
                             deliver_after_commit=deliver_after_commit))


#: Messages per INSERT in :func:`store_emails` (6 parameters each: well under SQLite's and
#: PostgreSQL's limits on one statement's parameters).
STORE_BATCH = 1000


def store_emails(messages: Sequence[tuple[str, str, str, str]], *,
                 deliver_after_commit: bool = True) -> list[int]:
    """Queue many messages made by ``build_message``, each ``(to, subject, dedupe_key,
    message)``, in one insert per ``STORE_BATCH``; returns the ids of those queued (a key
    already used, or queued meanwhile by a concurrent transaction, is skipped: ``ON CONFLICT
    DO NOTHING``, one statement, no savepoint)."""
    now = utcnow()
    rows = [{"dedupe_key": key, "recipient": to, "subject": " ".join(subject.split()),
             "message": message, "created_at": now, "attempts": 0}
            for to, subject, key, message in messages]
    ids: list[int] = []
    for start in range(0, len(rows), STORE_BATCH):
        chunk = rows[start:start + STORE_BATCH]
        # One message (a receipt, in a webhook's job) as a single-row VALUES: SQLAlchemy
        # caches its compiled form, where a multi-row one is compiled anew each time.
        ids += db.session.execute(
            insert(OutboundEmail).values(chunk[0] if len(chunk) == 1 else chunk)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OutboundEmail.id)).scalars()
    if deliver_after_commit:
        for email_id in ids:
            jobs.enqueue(deliver_emails, email_id)
    return ids


def _domain(address: str) -> str | None:
    return parseaddr(address)[1].partition("@")[2] or None


def ready_to_send(row: OutboundEmail, sender: str) -> bytes:
    """The stored message as handed to a transport: one queued without a ``From`` (most of
    ours: services do not know the sender) gets ``sender`` as its ``From``, and a
    ``Message-ID`` made from the row, the same at every attempt."""
    message = row.message.encode()
    head, _, _ = message.partition(b"\r\n\r\n")
    if any(line[:5].lower() == b"from:" for line in head.split(b"\r\n")):
        return message
    from_line, domain = _sender_lines(sender)
    message_id = (f"Message-ID: <{row.created_at:%Y%m%d%H%M%S%f}.{row.id}.newsfund@{domain}>"
                  "\r\n")
    if not message_id.isascii() or len(message_id) > _SMTP.max_line_length + 2:
        message_id = _folded(message_id[:10], message_id[12:-2])  # as email would fold it
    return from_line + message_id.encode() + message


@lru_cache(maxsize=16)
def _sender_lines(sender: str) -> tuple[bytes, str]:
    """``sender``'s ``From`` line as ``email`` writes it, and the domain of the
    ``Message-ID``s sent with it: worked out once a sender, not once a message (an ASCII
    ``Message-ID`` that fits a line is written as it is, which is what ``email`` makes of
    it)."""
    return _folded("From", sender).encode(), _domain(sender) or "localhost"


def _folded(name: str, value: str, out: EmailPolicy = _SMTP) -> str:
    """The header line ``email`` writes with the policy ``out`` for ``name: value`` (parsed
    and folded as in a message it builds; CRLF)."""
    return out.fold(*_BUILD.header_store_parse(name, value))


class NotDelivered(Exception):
    """Messages a job was to deliver are still queued (kept on each: its error)."""


@jobs.gathered
def deliver_emails(email_ids: list[int]) -> None:
    """The job queued after the commit (``store_emails``), once for all the messages a
    transaction queued (a batch of webhook events' receipts): :func:`deliver_batch` through the
    app's transport, over one connection. Raises when one of them is left queued, so that the
    queue tries again (those handed over meanwhile are not sent twice)."""
    sent, failed = deliver_batch(email_ids, transport=current_mailer().transport)
    if failed:
        raise NotDelivered(f"{failed} of {sent + failed} message(s) not delivered")


#: A message claimed this long ago and not recorded since was claimed by a sender that died
#: on another machine (one that died on this machine is known at once: ``claimant_gone``): the
#: next sender takes it again. Far longer than any batch takes to hand over.
CLAIM_EXPIRES = timedelta(minutes=10)


def _claim(email_ids: Sequence[int], sender: str) -> list[tuple[int, str, bytes]]:
    """Claim the messages among ``email_ids`` not sent and not being sent by another sender, in
    a transaction of its own, committed at once; returns each claimed one as (id, recipient,
    what to hand the transport), in id order.

    So the database is locked only for that short transaction, never while a mail server takes
    the messages (SQLite's write lock, which every gift given meanwhile would wait for; on
    PostgreSQL the rows' locks); a second sender at the same time (two ``flask mail
    send-pending``, or one beside a job) finds them claimed and leaves them. A sender that dies
    after its claim leaves them queued: the next sender takes them at once when the claimant
    was a process of this machine that has ended (a worker killed mid-send), otherwise once
    the claim is :data:`CLAIM_EXPIRES` old. A message the dead sender had handed over may then
    arrive twice, with the same ``Message-ID`` (:func:`ready_to_send`)."""
    now, me = utcnow(), this_process()
    unsent = (OutboundEmail.id.in_(list(email_ids)), OutboundEmail.sent_at.is_(None))
    rows = list(db.session.scalars(
        update(OutboundEmail)
        .where(*unsent, or_(OutboundEmail.claimed_at.is_(None),
                            OutboundEmail.claimed_at < now - CLAIM_EXPIRES))
        .values(claimed_at=now, claimed_by=me).returning(OutboundEmail),
        execution_options={"synchronize_session": False}))
    if len(rows) < len(email_ids):
        claimants = db.session.scalars(select(OutboundEmail.claimed_by).distinct().where(
            *unsent, OutboundEmail.claimed_by != me)).all()
        if gone := [claimant for claimant in claimants if claimant_gone(claimant)]:
            rows += db.session.scalars(  # those another sender has not taken over first
                update(OutboundEmail)
                .where(*unsent, OutboundEmail.claimed_by.in_(gone))
                .values(claimed_at=now, claimed_by=me).returning(OutboundEmail),
                execution_options={"synchronize_session": False})
    claimed = [(row.id, row.recipient, ready_to_send(row, sender))
               for row in sorted(rows, key=lambda row: row.id)]
    db.session.commit()
    return claimed


def _record(sent: Sequence[int], failed: Mapping[int, str]) -> None:
    """Record what the transport did with claimed messages, in one transaction: ``sent``, and
    ``failed`` with each one's error (left queued); their claims end."""
    now = utcnow()
    outcomes: dict[str | None, list[int]] = {None: list(sent)} if sent else {}
    for email_id, error in failed.items():
        outcomes.setdefault(error, []).append(email_id)
    for error, ids in outcomes.items():
        db.session.execute(
            update(OutboundEmail).where(OutboundEmail.id.in_(ids))
            .values(sent_at=now if error is None else None, last_error=error,
                    attempts=OutboundEmail.attempts + 1, claimed_at=None,
                    claimed_by=None),
            execution_options={"synchronize_session": False})
    db.session.commit()


def send_email(email_id: int, transport: OutboxTransport | SMTPTransport) -> bool:
    """Hand one queued message to ``transport``, once (:func:`_claim`). Safe to call again
    after a failure, which is kept on the message and raised. Returns False when there was
    nothing to hand over: the message was sent, or another sender has it in hand."""
    claimed = _claim([email_id], transport.sender)
    if not claimed:
        return False
    _, recipient, message = claimed[0]
    try:
        transport.send(recipient, message)
    except (OSError, smtplib.SMTPException) as exc:
        _record((), {email_id: f"{type(exc).__name__}: {exc}"})
        raise
    _record([email_id], {})
    return True


def deliver_batch(email_ids: Sequence[int], *,
                  transport: OutboxTransport | SMTPTransport) -> tuple[int, int]:
    """Hand many committed messages to ``transport`` over one connection and record them in
    one commit (one commit per message costs an fsync each on SQLite). Returns (sent, failed);
    a failed message stays queued for ``deliver_pending`` (``flask mail send-pending``).

    The messages are claimed first (:func:`_claim`): none is locked while the mail server takes
    them, and one another sender has in hand is left to it."""
    claimed = _claim(email_ids, transport.sender)
    sent: list[int] = []
    failed: dict[int, str] = {}
    try:
        if claimed:
            with transport.connection() as connection:
                for email_id, recipient, message in claimed:
                    try:
                        connection.send(recipient, message)
                    except (smtplib.SMTPResponseException,
                            smtplib.SMTPRecipientsRefused) as exc:  # this message refused
                        failed[email_id] = f"{type(exc).__name__}: {exc}"
                    else:
                        sent.append(email_id)
    except (OSError, smtplib.SMTPException) as exc:  # no connection, or it dropped
        handed_over = set(sent)
        for email_id, _, _ in claimed:
            if email_id not in handed_over:
                failed.setdefault(email_id, f"{type(exc).__name__}: {exc}")
    _record(sent, failed)
    return len(sent), len(failed)


def deliver_pending(limit: int = 1000, *, transport: OutboxTransport | SMTPTransport,
                    created_before: datetime | None = None) -> tuple[int, int]:
    """Retry every message not yet delivered (queued before ``created_before``, when given:
    the scheduler leaves newer ones to the jobs delivering them); returns (sent, failed), not
    counting those another sender had in hand."""
    query = select(OutboundEmail.id).where(OutboundEmail.sent_at.is_(None))
    if created_before is not None:
        query = query.where(OutboundEmail.created_at < created_before)
    ids = db.session.scalars(query.order_by(OutboundEmail.id).limit(limit)).all()
    sent = failed = 0
    for email_id in ids:
        try:
            sent += send_email(email_id, transport)
        except (OSError, smtplib.SMTPException):
            failed += 1
    return sent, failed


class OutboxTransport:
    """Writes each message as an ``.eml`` file, atomically (temp file, then rename);
    ``sender``: the ``From`` of messages queued without one (:func:`ready_to_send`)."""

    def __init__(self, directory: str, *, sender: str):
        self.directory = Path(directory)
        self.sender = sender

    @contextmanager
    def connection(self) -> Iterator[OutboxTransport]:
        """For many messages in a row (the daily email); a folder needs no connection."""
        self.directory.mkdir(parents=True, exist_ok=True)
        yield self

    def send(self, recipient: str, message: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(message)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        os.replace(tmp, self.directory / f"{stamp}-{Path(tmp).stem}.eml")


class SMTPTransport:
    """Sends through the SMTP server at ``url``, with ``sender``'s address as the envelope
    sender (and ``sender`` the ``From`` of messages queued without one)."""

    def __init__(self, url: str, *, sender: str, timeout: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MAIL_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.ssl = parts.scheme == "smtps"
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.from_addr = parseaddr(sender)[1]
        self.timeout = timeout

    def send(self, recipient: str, message: bytes) -> None:
        with self.connection() as connection:
            connection.send(recipient, message)

    @contextmanager
    def connection(self) -> Iterator[SMTPConnection]:
        """One SMTP session for many messages in a row (the daily email), closed at the end."""
        cls = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        with cls(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            yield SMTPConnection(smtp, self.from_addr)


class SMTPConnection:
    def __init__(self, smtp: smtplib.SMTP, from_addr: str):
        self.smtp = smtp
        self.from_addr = from_addr

    def send(self, recipient: str, message: bytes) -> None:
        self.smtp.sendmail(self.from_addr, [recipient], message)


def transport_from_config(config) -> OutboxTransport | SMTPTransport:
    if config.get("MAIL_URL"):
        return SMTPTransport(config["MAIL_URL"], sender=config["MAIL_FROM"])
    return OutboxTransport(config["MAIL_OUTBOX_DIR"], sender=config["MAIL_FROM"])


mail_cli = AppGroup("mail", help="Outgoing mail.")


@mail_cli.command("send-pending")
@writing_command
def send_pending_command() -> None:
    """Deliver every queued message that has not gone out yet (after an SMTP outage, say)."""
    sent, failed = deliver_pending(transport=current_mailer().transport)
    click.echo(f"sent {sent}, failed {failed}")
    if failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(mail_cli)
