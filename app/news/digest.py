"""The daily news email: built for each confirmed subscriber, sent once per subscriber per day.

How "once" holds:

- The first run of a day fixes that day's window of articles (a ``Digest`` row), so a rerun
  sends the same stories.
- Before a message is built, its (subscriber, day) pair is claimed by inserting a
  ``DigestSend`` row under a unique constraint (``ON CONFLICT DO NOTHING``), in batches. A second
  run, or one running at the same time, finds the pair taken and skips it.
- After the transport accepts a batch, its rows are marked sent. A failed message is marked
  failed and retried by the next run (up to ``max_attempts`` a day).
- A run that crashes leaves at most one batch claimed but not marked. The next run retries those
  rows once their claim is older than ``reclaim_after`` (so that a run still going is not
  doubled). Those messages may then arrive twice; each carries a Message-ID derived from the
  day and the subscriber, the same on both, which mail clients use to collapse duplicates.

What each subscriber gets: the window's news in the categories their supporter account follows
(or, when it follows none or those are quiet, the top stories). Stories the feed marks as
analysis (``Article.is_analysis``) are not news items: they make the section "Analysis from our
correspondents", the day's analysis whatever its categories, which only subscribers whose level
has the ``daily_digest_plus`` perk get (decided by ``app.accounts.membership``, asked once per
batch, not per subscriber). Everyone else gets, on a day with analysis, one line saying what the
members of that level get, linking to giving. When no level offers the perk (the levels are
configurable), analysis is news like any other story.

When staff switch it on for a live campaign (``app.prompts``: the daily email's appeal), the
email carries that campaign's appeal block with a give link attributed to the email
(``utm_medium=email``, ``utm_content=email-appeal``), except to subscribers who have given to
the campaign (asked once per batch).

Speed: the stories each subscriber gets depend only on the categories they follow and whether
they have the perk, so the text and HTML are rendered once per distinct pair; per subscriber
only the signed unsubscribe link changes. Messages are assembled as MIME by hand around the
stdlib's own header encoding, because ``EmailMessage`` costs about a millisecond a message; the
tests parse the result with the stdlib parser. They are handed to the same transports as all mail
(``OutboxTransport`` or ``SMTPTransport``, one SMTP session per batch).
"""

from __future__ import annotations

import binascii
import secrets
import smtplib
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from zoneinfo import ZoneInfo

from flask import render_template
from sqlalchemy import and_, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.accounts.membership import (
    Level,
    level_granting,
    levels_from_config,
    supporters_with_perk,
)
from app.accounts.models import Supporter
from app.extensions import db
from app.mail import LONG_HEADERS
from app.news.models import (
    Article,
    Category,
    Digest,
    DigestSend,
    Follow,
    NewsSubscriber,
    SendStatus,
    SubscriberStatus,
    article_category,
)
from app.news.services import Signer, list_unsubscribe_headers
from app.prompts.services import email_appeal_campaign, gave_to

WINDOW = timedelta(days=1)
SUBJECT = "Your daily news from {org}: {date}"
# The membership perk that adds the analysis section.
ANALYSIS_PERK = "daily_digest_plus"


@dataclass(frozen=True)
class DigestSettings:
    org_name: str
    org_address: str
    org_zone: str
    mail_from: str
    max_articles: int = 12
    top_stories: int = 8
    analysis_stories: int = 5
    # The membership levels (MEMBERSHIP_LEVELS): who has the analysis perk.
    levels: tuple[Level, ...] = ()

    @classmethod
    def from_config(cls, config) -> DigestSettings:
        return cls(org_name=config["ORG_NAME"], org_address=config["ORG_ADDRESS"],
                   org_zone=config["ORG_TIMEZONE"], mail_from=config["NEWS_MAIL_FROM"],
                   max_articles=config["NEWS_DIGEST_MAX_ARTICLES"],
                   top_stories=config["NEWS_DIGEST_TOP_STORIES"],
                   analysis_stories=config["NEWS_DIGEST_ANALYSIS_STORIES"],
                   levels=levels_from_config(config))


@dataclass
class DigestReport:
    digest_date: date
    window_start: datetime | None = None
    window_end: datetime | None = None
    articles: int = 0
    sent: int = 0
    failed: int = 0
    sent_before: int = 0  # by earlier runs today
    in_flight: int = 0  # claimed by a run still going (or crashed less than reclaim_after ago)
    editions: int = 0  # distinct contents rendered
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return (self.sent + self.failed) / self.seconds if self.seconds else 0.0


class DigestAborted(Exception):
    """The transport stopped accepting mail; what was sent is recorded, the rest waits."""

    def __init__(self, message: str, report: DigestReport):
        super().__init__(message)
        self.report = report


# Errors about one message (a refused recipient): the next message may well go through.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                  smtplib.SMTPSenderRefused)
# Errors about the transport itself (connection lost, disk full): stop the run.
TRANSPORT_ERRORS = (OSError, smtplib.SMTPException)


@dataclass(frozen=True)
class Appeal:
    """The live campaign's appeal block: what it says and where its link goes."""

    campaign_id: int
    title: str
    summary: str
    signatory: str
    give_url: str


#: The utm fields of the appeal's give link (``utm_campaign`` is the campaign's slug).
APPEAL_UTM = {"utm_source": "daily-email", "utm_medium": "email", "utm_content": "email-appeal"}


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    supporter_id: int | None


# ------------------------------------------------------------------ the day's stories


@dataclass(frozen=True)
class Story:
    id: int
    title: str
    summary: str
    link: str
    published_at: datetime
    is_top: bool
    is_analysis: bool
    author: str
    category_ids: frozenset[int]
    category_names: tuple[str, ...]
    # For the plain-text part, wrapped once here rather than in every edition.
    title_lines: str = ""
    summary_lines: str = ""


def digest_date_for(now: datetime, zone: str) -> date:
    """The day the email is for, in the organisation's time zone."""
    return now.astimezone(ZoneInfo(zone)).date()


def open_digest(day: date, now: datetime) -> Digest | None:
    """The day's digest, its window fixed by the first run: the 24 hours before it started.

    None when that window holds no article (nothing is recorded, so a later run can try again).
    """
    digest = db.session.scalar(select(Digest).where(Digest.digest_date == day))
    if digest is not None:
        return digest
    start = now - WINDOW
    if not db.session.scalar(select(exists().where(Article.published_at > start,
                                                   Article.published_at <= now))):
        return None
    _end_read()
    digest = Digest(digest_date=day, window_start=start, window_end=now, started_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(digest)
    except IntegrityError:  # a concurrent run opened it first: use its window
        digest = db.session.scalar(select(Digest).where(Digest.digest_date == day))
    return digest


def load_stories(start: datetime, end: datetime) -> list[Story]:
    """The window's articles, newest first, with their categories."""
    articles = db.session.scalars(
        select(Article).where(Article.published_at > start, Article.published_at <= end)
        .order_by(Article.published_at.desc(), Article.id.desc())).all()
    names = dict(db.session.execute(select(Category.id, Category.name)).all())
    tags: dict[int, list[int]] = {}
    if articles:
        for article_id, category_id in db.session.execute(
                select(article_category.c.article_id, article_category.c.category_id)
                .where(article_category.c.article_id.in_([a.id for a in articles]))):
            tags.setdefault(article_id, []).append(category_id)
    return [Story(id=a.id, title=a.title, summary=a.summary, link=a.link,
                  published_at=a.published_at, is_top=a.is_top, is_analysis=a.is_analysis,
                  author=a.author,
                  category_ids=frozenset(tags.get(a.id, ())),
                  category_names=tuple(sorted(names[c] for c in tags.get(a.id, ()))),
                  title_lines="\n".join(textwrap.wrap(a.title, 72)),
                  summary_lines="\n".join(textwrap.wrap(a.summary, 72)))
            for a in articles]


def top_stories(stories: list[Story], limit: int) -> list[Story]:
    """The newsroom's picks first, then the newest, up to ``limit``."""
    return sorted(stories, key=lambda s: not s.is_top)[:limit]


def stories_for(follows: frozenset[int], stories: list[Story], limit: int) -> list[Story]:
    return [s for s in stories if s.category_ids & follows][:limit]


def analysis_for_the_day(stories: list[Story], limit: int) -> list[Story]:
    """The analysis section: the window's analysis, newest first, whatever its categories."""
    return [s for s in stories if s.is_analysis][:limit]


# ------------------------------------------------------------------ building the messages


def _qp(text: str) -> bytes:
    """Quoted-printable, CRLF line ends: safe for any SMTP server, readable in the raw."""
    return binascii.b2a_qp(text.replace("\r\n", "\n").replace("\n", "\r\n").encode(),
                           istext=True)


class Edition:
    """One rendered content (text and HTML) with a placeholder where the unsubscribe link goes.

    The link sits on a line of its own in both templates, so each part is pre-encoded as
    quoted-printable around it and only that line is encoded per subscriber.
    """

    def __init__(self, text: str, html: str, placeholder: str, count: int):
        self.count = count
        self.placeholder = placeholder
        self.text = self._split(text, placeholder)
        self.html = self._split(html, placeholder)
        self.raw = (text, html)

    @staticmethod
    def _split(body: str, placeholder: str) -> list[bytes | str]:
        """Static runs of whole lines, pre-encoded (bytes); lines with the placeholder kept as
        text (str), to be filled and encoded per subscriber."""
        pieces: list[bytes | str] = []
        static: list[str] = []
        for line in body.replace("\r\n", "\n").split("\n"):
            if placeholder in line:
                if static:
                    pieces.append(_qp("\n".join(static) + "\n"))
                    static = []
                pieces.append(line)
            else:
                static.append(line)
        if static:
            pieces.append(_qp("\n".join(static)))
        return pieces

    def fill(self, pieces: list[bytes | str], url: str) -> bytes:
        """A part's quoted-printable body with this subscriber's link."""
        last = len(pieces) - 1
        return b"".join(
            piece if isinstance(piece, bytes)
            else _qp(piece.replace(self.placeholder, url) + ("\n" if i < last else ""))
            for i, piece in enumerate(pieces))


class DigestBuilder:
    """Builds each subscriber's message; renders each distinct content once."""

    def __init__(self, *, day: date, stories: list[Story], settings: DigestSettings,
                 signer: Signer, unsubscribe_url: Callable[[str], str], manage_url: str,
                 subscribe_url: str, now: datetime, give_url: str | None = None,
                 appeal: Appeal | None = None):
        self.day = day
        self.settings = settings
        self.give_url = give_url
        self.appeal = appeal
        # The level that brings the analysis. When the levels configured offer it at none,
        # analysis is news like any other story.
        self.perk_level = level_granting(ANALYSIS_PERK, settings.levels)
        if self.perk_level is None:
            self.stories, self.analysis = stories, []
        else:
            self.stories = [s for s in stories if not s.is_analysis]
            self.analysis = analysis_for_the_day(stories, settings.analysis_stories)
        self.signer = signer
        self.unsubscribe_url = unsubscribe_url
        self.manage_url = manage_url
        self.subscribe_url = subscribe_url
        self.names = dict(db.session.execute(select(Category.id, Category.name)).all())
        self.placeholder = f"unsubscribe-link-{secrets.token_hex(8)}"
        self.editions: dict[tuple[frozenset[int] | None, bool, bool], Edition] = {}
        self.top = top_stories(self.stories, settings.top_stories)
        self.subject = SUBJECT.format(org=settings.org_name, date=_long_date(day))
        self.domain = parseaddr(settings.mail_from)[1].partition("@")[2] or "localhost"
        self.boundary = f"==digest-{secrets.token_hex(12)}=="
        # The headers every message shares, encoded once by the stdlib (names and subjects
        # may need RFC 2047 encoding).
        fold = LONG_HEADERS.fold
        self.head = "".join([
            fold("From", settings.mail_from),
            fold("Subject", self.subject),
            fold("Date", format_datetime(now)),
            "MIME-Version: 1.0\r\n",
            fold("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n',
        ]).encode("ascii")
        part = ('--{b}\r\nContent-Type: text/{sub}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        self.text_open = part.format(b=self.boundary, sub="plain").encode()
        self.html_open = ("\r\n" + part.format(b=self.boundary, sub="html")).encode()
        self.close = f"\r\n--{self.boundary}--\r\n".encode()

    def with_analysis(self, supporter_ids: Iterable[int], now: datetime) -> set[int]:
        """Which of these supporters get the analysis section (one membership check for a
        whole batch)."""
        if not self.analysis:
            return set()
        return supporters_with_perk(supporter_ids, ANALYSIS_PERK, levels=self.settings.levels,
                                    now=now)

    def with_appeal(self, supporter_ids: Iterable[int]) -> set[int]:
        """Which of these supporters have given to the appeal's campaign (they get no appeal)."""
        if self.appeal is None:
            return set()
        return gave_to(self.appeal.campaign_id, sorted(set(supporter_ids)))

    def edition(self, follows: frozenset[int], extended: bool = False,
                appeal: bool = True) -> Edition:
        """The content for these follows, with the analysis section when ``extended``, and the
        campaign's appeal when there is one and ``appeal``."""
        key = (follows or None, extended and bool(self.analysis), appeal and bool(self.appeal))
        edition = self.editions.get(key)
        if edition is None:
            chosen = stories_for(follows, self.stories, self.settings.max_articles) \
                if follows else []
            followed = sorted(self.names[c] for c in follows if c in self.names)
            analysis = self.analysis if key[1] else []
            context = dict(
                day=self.day, date_text=_long_date(self.day), personal=bool(chosen),
                followed=followed, stories=chosen or self.top, org_name=self.settings.org_name,
                org_address=self.settings.org_address, unsubscribe_url=self.placeholder,
                manage_url=self.manage_url, subscribe_url=self.subscribe_url,
                analysis=analysis, appeal=self.appeal if key[2] else None,
                # What the others miss, said once, on a day there is analysis to miss.
                analysis_offer=None if key[1] or not self.analysis or not self.give_url
                else {"level": self.perk_level.name, "count": len(self.analysis),
                      "give_url": self.give_url},
            )
            edition = Edition(render_template("email/news_digest.txt", **context),
                              render_template("email/news_digest.html", **context),
                              self.placeholder, len(chosen or self.top) + len(analysis))
            self.editions[key] = edition
        return edition

    def message_id(self, subscriber_id: int) -> str:
        # The same for every attempt at this day's email to this subscriber (see the module doc).
        return f"<news-digest.{self.day.isoformat()}.{subscriber_id}@{self.domain}>"

    def build(self, recipient: Recipient, follows: frozenset[int],
              extended: bool = False, appeal: bool = True) -> tuple[bytes, int]:
        edition = self.edition(follows, extended, appeal)
        url = self.unsubscribe_url(
            self.signer.unsubscribe_token(recipient.subscriber_id, recipient.email))
        if not recipient.email.isascii() or not url.isascii():
            return self._build_with_stdlib(recipient, edition, url), edition.count
        message = b"".join([
            f"To: {recipient.email}\r\n"
            f"Message-ID: {self.message_id(recipient.subscriber_id)}\r\n"
            f"List-Unsubscribe: <{url}>\r\n".encode(),
            self.head, b"\r\n",
            self.text_open, edition.fill(edition.text, url),
            self.html_open, edition.fill(edition.html, url),
            self.close,
        ])
        return message, edition.count

    def _build_with_stdlib(self, recipient: Recipient, edition: Edition, url: str) -> bytes:
        """An internationalised address: let the stdlib encode everything."""
        msg = EmailMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = recipient.email
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(datetime.now().astimezone())
        msg["Message-ID"] = self.message_id(recipient.subscriber_id)
        for name, value in list_unsubscribe_headers(url).items():
            msg[name] = value
        text, html = edition.raw
        msg.set_content(text.replace(self.placeholder, url))
        msg.add_alternative(html.replace(self.placeholder, url), subtype="html")
        return msg.as_bytes(policy=LONG_HEADERS)


def _long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


# ------------------------------------------------------------------ claiming and recording


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _end_read() -> None:
    """End the current (read) transaction, so the next statement, a write, begins a new one.

    SQLite cannot turn a read transaction into a write one when another connection wrote in
    between; a transaction that starts with its write waits for the lock instead.
    """
    db.session.commit()


def _recipient_columns():
    """The subscriber, and whose follows make their email: the supporter it is linked to, else
    the supporter with the same address (an account opened after subscribing)."""
    return (NewsSubscriber.id, NewsSubscriber.email,
            func.coalesce(NewsSubscriber.supporter_id, Supporter.id))


def _fresh_recipients(day: date, after: int, limit: int) -> list[Recipient]:
    rows = db.session.execute(
        select(*_recipient_columns())
        .outerjoin(Supporter, Supporter.email == NewsSubscriber.email)
        .where(NewsSubscriber.status == SubscriberStatus.CONFIRMED, NewsSubscriber.id > after,
               ~exists().where(DigestSend.subscriber_id == NewsSubscriber.id,
                               DigestSend.digest_date == day))
        .order_by(NewsSubscriber.id).limit(limit)).all()
    return [Recipient(*row) for row in rows]


def _retry_condition(stale_before: datetime, max_attempts: int):
    return or_(and_(DigestSend.status == SendStatus.FAILED, DigestSend.attempts < max_attempts),
               and_(DigestSend.status == SendStatus.CLAIMED,
                    DigestSend.claimed_at < stale_before))


def _retry_recipients(day: date, after: int, limit: int, stale_before: datetime,
                      max_attempts: int) -> list[Recipient]:
    rows = db.session.execute(
        select(*_recipient_columns())
        .outerjoin(Supporter, Supporter.email == NewsSubscriber.email)
        .join(DigestSend, DigestSend.subscriber_id == NewsSubscriber.id)
        .where(DigestSend.digest_date == day, NewsSubscriber.id > after,
               NewsSubscriber.status == SubscriberStatus.CONFIRMED,
               _retry_condition(stale_before, max_attempts))
        .order_by(NewsSubscriber.id).limit(limit)).all()
    return [Recipient(*row) for row in rows]


def _claim_fresh(day: date, ids: list[int], now: datetime) -> set[int]:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING: the pairs another run took
    meanwhile are skipped, and the statement's shape is the same every batch (one compile)."""
    insert = _insert(db.session.get_bind().dialect.name)
    table = DigestSend.__table__
    rows = (select(NewsSubscriber.id, literal(day, table.c.digest_date.type),
                   literal(SendStatus.CLAIMED, table.c.status.type),
                   literal(now, table.c.claimed_at.type), literal(1), literal(0))
            .where(NewsSubscriber.id.in_(ids)))
    stmt = (insert(table)
            .from_select(["subscriber_id", "digest_date", "status", "claimed_at", "attempts",
                          "articles"], rows)
            .on_conflict_do_nothing(index_elements=["subscriber_id", "digest_date"])
            .returning(table.c.subscriber_id))
    return set(db.session.scalars(stmt))


def _claim_retries(day: date, ids: list[int], now: datetime, stale_before: datetime,
                   max_attempts: int) -> set[int]:
    stmt = (update(DigestSend)
            .where(DigestSend.digest_date == day, DigestSend.subscriber_id.in_(ids),
                   _retry_condition(stale_before, max_attempts))
            .values(status=SendStatus.CLAIMED, claimed_at=now, attempts=DigestSend.attempts + 1)
            .returning(DigestSend.subscriber_id)
            .execution_options(synchronize_session=False))
    return set(db.session.scalars(stmt))


def _follows(supporter_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    ids = sorted(set(supporter_ids))
    found: dict[int, set[int]] = {}
    if ids:
        for supporter_id, category_id in db.session.execute(
                select(Follow.supporter_id, Follow.category_id)
                .where(Follow.supporter_id.in_(ids))):
            found.setdefault(supporter_id, set()).add(category_id)
    return {k: frozenset(v) for k, v in found.items()}


def _record(day: date, sent: dict[int, int], failed: dict[int, str], now: datetime) -> None:
    """Mark the batch's outcome: one UPDATE per distinct article count (usually a handful)."""
    by_count: dict[int, list[int]] = {}
    for subscriber_id, count in sent.items():
        by_count.setdefault(count, []).append(subscriber_id)
    for count, ids in by_count.items():
        db.session.execute(
            update(DigestSend)
            .where(DigestSend.digest_date == day, DigestSend.subscriber_id.in_(ids))
            .values(status=SendStatus.SENT, sent_at=now, articles=count, last_error=None)
            .execution_options(synchronize_session=False))
    for subscriber_id, error in failed.items():
        db.session.execute(
            update(DigestSend)
            .where(DigestSend.digest_date == day, DigestSend.subscriber_id == subscriber_id)
            .values(status=SendStatus.FAILED, last_error=error[:1000])
            .execution_options(synchronize_session=False))


def _count(day: date, status: SendStatus) -> int:
    return db.session.scalar(select(func.count()).select_from(DigestSend).where(
        DigestSend.digest_date == day, DigestSend.status == status))


# ------------------------------------------------------------------ the run


def send_digest(*, now: datetime, transport, signer: Signer, settings: DigestSettings,
                unsubscribe_url: Callable[[str], str], manage_url: str, subscribe_url: str,
                give_url: str | None = None, appeal: Appeal | None = None,
                batch_size: int = 500,
                reclaim_after: timedelta = timedelta(minutes=30),
                max_attempts: int = 3, max_consecutive_refusals: int = 50,
                progress: Callable[[DigestReport], None] | None = None,
                clock: Callable[[], float] = time.perf_counter) -> DigestReport:
    """Send today's email to every confirmed subscriber who has not had it yet.

    Commits as it goes (a batch at a time): it is a command's whole work, not part of a request.
    Raises :class:`DigestAborted` when the transport stops accepting mail. ``give_url``: where
    the line offering the analysis to non-members links (no line without it). ``appeal``: the
    campaign appeal block, for subscribers who have not given to it.
    """
    started = clock()
    day = digest_date_for(now, settings.org_zone)
    report = DigestReport(digest_date=day)
    digest = open_digest(day, now)
    db.session.commit()
    if digest is None:
        report.window_start, report.window_end = now - WINDOW, now
        return report
    report.window_start, report.window_end = digest.window_start, digest.window_end
    stories = load_stories(digest.window_start, digest.window_end)
    report.articles = len(stories)
    report.sent_before = _count(day, SendStatus.SENT)
    builder = DigestBuilder(day=day, stories=stories, settings=settings, signer=signer,
                            unsubscribe_url=unsubscribe_url, manage_url=manage_url,
                            subscribe_url=subscribe_url, now=now, give_url=give_url,
                            appeal=appeal)
    stale_before = now - reclaim_after
    refusals = 0

    def run(fetch, claim) -> None:
        nonlocal refusals
        after = 0
        while True:
            recipients = fetch(after)
            if not recipients:
                return
            after = recipients[-1].subscriber_id
            follows = _follows(r.supporter_id for r in recipients if r.supporter_id)
            extended = builder.with_analysis(
                (r.supporter_id for r in recipients if r.supporter_id), now)
            gave = builder.with_appeal(r.supporter_id for r in recipients if r.supporter_id)
            _end_read()
            claimed = claim([r.subscriber_id for r in recipients])
            db.session.commit()
            batch = [r for r in recipients if r.subscriber_id in claimed]
            if not batch:
                continue
            sent: dict[int, int] = {}
            failed: dict[int, str] = {}
            aborted = None
            try:
                with transport.connection() as connection:
                    for recipient in batch:
                        message, count = builder.build(
                            recipient, follows.get(recipient.supporter_id, frozenset()),
                            recipient.supporter_id in extended,
                            recipient.supporter_id not in gave)
                        try:
                            connection.send(recipient.email, message)
                        except MESSAGE_ERRORS as exc:
                            failed[recipient.subscriber_id] = f"{type(exc).__name__}: {exc}"
                            refusals += 1
                            if refusals >= max_consecutive_refusals:
                                aborted = (f"the mail server refused {refusals} messages in a "
                                           f"row; last: {exc}")
                                break
                        else:
                            sent[recipient.subscriber_id] = count
                            refusals = 0
            except TRANSPORT_ERRORS as exc:
                aborted = f"the mail transport failed: {type(exc).__name__}: {exc}"
            if aborted:
                for recipient in batch:
                    if recipient.subscriber_id not in sent:
                        failed.setdefault(recipient.subscriber_id, aborted)
            _record(day, sent, failed, now)
            db.session.commit()
            report.sent += len(sent)
            report.failed += len(failed)
            report.editions = len(builder.editions)
            report.seconds = clock() - started
            if progress:
                progress(report)
            if aborted:
                raise DigestAborted(aborted, report)

    run(lambda after: _retry_recipients(day, after, batch_size, stale_before, max_attempts),
        lambda ids: _claim_retries(day, ids, now, stale_before, max_attempts))
    run(lambda after: _fresh_recipients(day, after, batch_size),
        lambda ids: _claim_fresh(day, ids, now))

    _end_read()
    report.in_flight = db.session.scalar(
        select(func.count()).select_from(DigestSend)
        .join(NewsSubscriber, NewsSubscriber.id == DigestSend.subscriber_id)
        .where(DigestSend.digest_date == day, DigestSend.status == SendStatus.CLAIMED,
               NewsSubscriber.status == SubscriberStatus.CONFIRMED))
    if not report.in_flight and not db.session.scalar(select(exists().where(
            DigestSend.digest_date == day, DigestSend.status == SendStatus.FAILED,
            DigestSend.attempts < max_attempts))):
        _end_read()
        db.session.execute(update(Digest).where(Digest.id == digest.id,
                                                Digest.finished_at.is_(None))
                           .values(finished_at=now))
    db.session.commit()
    report.seconds = clock() - started
    return report


def send_configured_digest(*, now: datetime, **options) -> DigestReport:
    """:func:`send_digest` with what the app's settings give: the mail transport, the signer,
    and the links, on ``PUBLIC_URL`` (``app.urls``), so it runs the same in a command, a
    worker or the scheduler. ``options``: ``batch_size``, ``reclaim_after``, ``progress``."""
    from flask import current_app

    from app.mail import transport_from_config
    from app.urls import external_url as url

    config = current_app.config
    campaign = email_appeal_campaign(now)
    appeal = None if campaign is None else Appeal(
        campaign_id=campaign.id, title=campaign.title, summary=campaign.summary,
        signatory=", ".join(filter(None, (campaign.signatory_name, campaign.signatory_title))),
        give_url=url("campaigns.campaign", slug=campaign.slug, utm_campaign=campaign.slug[:100],
                     **APPEAL_UTM))
    return send_digest(
        now=now, transport=transport_from_config(config), signer=Signer.from_config(config),
        settings=DigestSettings.from_config(config),
        unsubscribe_url=lambda token: url("news.unsubscribe_page", token=token),
        manage_url=url("news.my_news"), subscribe_url=url("news.subscribe_page"),
        give_url=url("campaigns.home"), appeal=appeal, **options)
