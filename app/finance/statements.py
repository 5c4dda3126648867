"""Year-end giving statements: one PDF per donor listing the year's receipted gifts, emailed once.

A statement lists the gifts whose receipt is current (not void) and belongs to the year, in the
organisation's zone, like the receipts themselves: a refunded gift drops out, a partly refunded
one shows what is left. Each donor's email is queued under ``statement:<year>:<supporter id>``,
so running again, or after a crash half-way, mails only those not mailed yet.

``queue_statements`` works in batches and yields after each one; it never commits itself.
``send_statements`` is the one loop the page and ``flask finance statements`` both run over
it: it commits each batch with the commit it is given, then delivers that batch's mail over one
connection (``app.mail.deliver_batch``). Mail that could not be delivered stays queued for
``flask mail send-pending``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from itertools import groupby

from flask import render_template
from sqlalchemy import String, cast, func, literal, select

from app.accounts.models import Supporter
from app.campaigns.models import Campaign
from app.core import MAX_ID
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.documents import DocumentSettings
from app.finance.models import Receipt, ReceiptStatus
from app.finance.pdf import (
    Organisation,
    PdfSettings,
    StatementDocument,
    StatementLine,
    render_statement,
)
from app.giving.models import Gift
from app.mail import Mailer, OutboundEmail, build_message, deliver_batch, store_emails


def dedupe_key(year: int, supporter_id: int) -> str:
    return f"statement:{year}:{supporter_id}"


def _receipted(year: int):
    """Current receipts of the year, of donors who have not asked to be erased (an erased
    donor's gifts stay on the books, but there is no one to send a statement to)."""
    return (Receipt.year == year, Receipt.status == ReceiptStatus.ISSUED,
            Gift.supporter_id.in_(select(Supporter.id).where(Supporter.erased_at.is_(None))))


def count_donors(year: int) -> int:
    """How many donors have a statement for ``year``; a year with none is an error."""
    donors = db.session.scalar(
        select(func.count(func.distinct(Gift.supporter_id)))
        .select_from(Receipt).join(Gift, Gift.id == Receipt.gift_id).where(*_receipted(year)))
    if not donors:
        raise FinanceError(f"No receipted gifts in {year}: there is no statement to make.",
                           field="year")
    return donors


def count_sent(year: int) -> int:
    """How many of the year's donors already have their statement queued or mailed (their
    dedupe key is taken): those a run would skip."""
    key = literal(f"statement:{year}:") + cast(Gift.supporter_id, String)
    return db.session.scalar(
        select(func.count(func.distinct(Gift.supporter_id)))
        .select_from(Receipt).join(Gift, Gift.id == Receipt.gift_id)
        .where(*_receipted(year), select(OutboundEmail.id)
               .where(OutboundEmail.dedupe_key == key).exists())) or 0


def find_donor(who: str) -> int:
    """A supporter's id from what staff typed: the id itself, or their email address."""
    who = (who or "").strip()
    if who.isascii() and who.isdigit():
        # A number no id column holds names no one, rather than overflowing the driver.
        number = int(who) if len(who) <= len(str(MAX_ID)) else MAX_ID + 1
        supporter_id = None if number > MAX_ID else db.session.scalar(
            select(Supporter.id).where(Supporter.id == number))
    else:
        supporter_id = db.session.scalar(select(Supporter.id).where(
            Supporter.email == who.lower()))
    if supporter_id is None:
        raise FinanceError(f"No supporter with the id or email {who!r}.", field="donor")
    return supporter_id


def _lines(year: int, supporter_ids: list[int]):
    return db.session.execute(
        select(Gift.supporter_id, Supporter.email, Gift.donor_name, Gift.paid_at,
               Gift.goods_value, Gift.goods_description, Receipt.number, Receipt.amount,
               Receipt.currency, Receipt.issued_at, Campaign.title)
        .select_from(Receipt)
        .join(Gift, Gift.id == Receipt.gift_id)
        .join(Supporter, Supporter.id == Gift.supporter_id)
        .join(Campaign, Campaign.id == Gift.campaign_id)
        .where(*_receipted(year), Gift.supporter_id.in_(supporter_ids))
        .order_by(Gift.supporter_id, Receipt.sequence)
    ).all()


def _document(year: int, rows, settings: DocumentSettings, now: datetime, *,
              corrected: bool = False) -> StatementDocument:
    lines, notes, totals = [], [], {}
    for row in rows:
        lines.append(StatementLine(date=settings.date(row.paid_at or row.issued_at),
                                   receipt_number=row.number, campaign=row.title,
                                   amount=settings.money(row.amount, row.currency)))
        totals[row.currency] = totals.get(row.currency, 0) + row.amount
        if row.goods_value:
            value = settings.money(row.goods_value, row.currency)
            deductible = settings.money(max(0, row.amount - row.goods_value), row.currency)
            notes.append(f"Receipt {row.number}: in exchange you received "
                         f"{row.goods_description or 'goods or services'}, with an estimated "
                         f"fair-market value of {value}; the deductible part is {deductible}.")
    last = rows[-1]
    return StatementDocument(
        year=year, donor_name=last.donor_name, donor_email=last.email, lines=lines,
        totals=[settings.money(total, currency) for currency, total in sorted(totals.items())],
        statement=settings.tax_statement_year, issued_on=settings.date(now), notes=notes,
        created_at=now, corrected=corrected)


def statement_pdf(year: int, supporter_id: int, settings: DocumentSettings,
                  now: datetime) -> bytes:
    """One donor's statement (for a download page); FinanceError when they have none."""
    rows = _lines(year, [supporter_id])
    if not rows:
        raise FinanceError(f"No receipted gifts in {year} for this donor.", field="year")
    return render_statement(_document(year, rows, settings, now), settings.org, settings.pdf)


@dataclass
class StatementBatch:
    donors: int  # donors with a statement this year
    done: int  # donors handled so far (queued now or mailed before)
    queued: int  # statements queued in this run so far
    already_sent: int  # donors skipped: their statement was queued by an earlier run
    seconds: float  # since the run started
    email_ids: list[int]  # the statements queued in this batch, to deliver after the commit


@dataclass(frozen=True)
class StatementEmail:
    """What a worker process needs to build one statement email: no app, no database."""

    doc: StatementDocument
    org: Organisation
    pdf: PdfSettings
    sender: str
    to: str
    subject: str
    text: str
    html: str
    filename: str


def build_statement_email(job: StatementEmail) -> str:
    """The statement's PDF, and the message carrying it (the costly part of a statement)."""
    pdf = render_statement(job.doc, job.org, job.pdf)
    if not (job.to.isascii() and job.filename.isascii()):
        return build_message(sender=job.sender, to=job.to, subject=job.subject, text=job.text,
                             html=job.html, attachments=[(job.filename, "application/pdf", pdf)])
    return _assemble(job, pdf)


def _qp(text: str) -> str:
    """Quoted-printable with CRLF line ends."""
    return binascii.b2a_qp(text.replace("\r\n", "\n").replace("\n", "\r\n").encode(),
                           istext=True).decode("ascii")


def _assemble(job: StatementEmail, pdf: bytes) -> str:
    """The same message ``build_message`` makes (text and HTML alternatives, the PDF attached),
    put together by hand around the stdlib's header encoding: the ``email`` package's objects
    cost more than drawing the PDF, ten thousand times over."""
    mixed, alternative = (f"==statement-{secrets.token_hex(12)}==" for _ in range(2))
    fold = SMTP.fold
    sender = " ".join(job.sender.split())
    domain = parseaddr(sender)[1].partition("@")[2] or None
    part = ('--{b}\r\nContent-Type: text/{sub}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n")
    attachment = base64.encodebytes(pdf).decode("ascii").replace("\n", "\r\n")
    return "".join([
        fold("From", sender), fold("To", job.to), fold("Subject", " ".join(job.subject.split())),
        fold("Date", format_datetime(utcnow())), fold("Message-ID", make_msgid(domain=domain)),
        "MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n',
        f'--{mixed}\r\nContent-Type: multipart/alternative; boundary="{alternative}"\r\n'
        "MIME-Version: 1.0\r\n\r\n",
        part.format(b=alternative, sub="plain"), _qp(job.text), "\r\n",
        part.format(b=alternative, sub="html"), _qp(job.html), "\r\n",
        f"--{alternative}--\r\n\r\n",
        f"--{mixed}\r\nContent-Type: application/pdf\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: base64\r\n",
        fold("Content-Disposition", f'attachment; filename="{job.filename}"'), "\r\n",
        attachment, f"--{mixed}--\r\n",
    ])


def _statement_emails(year: int, supporter_ids: list[int], *, settings: DocumentSettings,
                      sender: str, now: datetime, subject: str, filename: str,
                      corrected: bool = False):
    """The statement emails of these donors, to build, and their (supporter id, address)."""
    jobs, recipients = [], []
    for supporter_id, rows in groupby(_lines(year, supporter_ids), key=lambda r: r.supporter_id):
        rows = list(rows)
        doc = _document(year, rows, settings, now, corrected=corrected)
        context = {"statement": doc, "org_name": settings.org.name}
        recipients.append((supporter_id, rows[0].email))
        jobs.append(StatementEmail(
            doc=doc, org=settings.org, pdf=settings.pdf, sender=sender, to=rows[0].email,
            subject=subject, filename=filename,
            text=render_template("email/statement.txt", **context),
            html=render_template("email/statement.html", **context)))
    return jobs, recipients


def queue_statements(year: int, *, settings: DocumentSettings, sender: str, now: datetime,
                     batch: int = 500,
                     build_many: Callable[[list[StatementEmail]], Iterable[str]] | None = None,
                     read: Callable[[], None] | None = None,
                     ) -> Iterator[StatementBatch]:
    """Queue each donor's statement email with its PDF, ``batch`` donors at a time; yields the
    running totals after each batch, for the caller to commit and report progress.

    ``build_many`` turns a batch's ``StatementEmail``s into messages (PDF and MIME), in
    order: by default here, one after the other; the command line passes a process pool's
    ``map``. Each batch's messages are then stored in one insert.

    ``read`` is called once a batch's rows are read, before its messages are built (seconds
    for 500 PDFs): ``send_statements`` passes its commit, which ends the reading transaction,
    so that on SQLite the write lock a writing command or job takes up front (``app.db``) is
    not held meanwhile and gifts are not kept waiting. Nothing is written before it."""
    started = time.perf_counter()
    donors = count_donors(year)
    subject = f"Your {year} giving statement from {settings.org.name}"
    filename = f"giving-statement-{year}.pdf"
    report = StatementBatch(donors=donors, done=0, queued=0, already_sent=0, seconds=0.0,
                            email_ids=[])
    last_id = 0
    while True:
        ids = list(db.session.scalars(
            select(Gift.supporter_id).distinct()
            .select_from(Receipt).join(Gift, Gift.id == Receipt.gift_id)
            .where(*_receipted(year), Gift.supporter_id > last_id)
            .order_by(Gift.supporter_id).limit(batch)))
        if not ids:
            return
        last_id = ids[-1]
        keys = {dedupe_key(year, i): i for i in ids}
        sent = set(db.session.scalars(select(OutboundEmail.dedupe_key).where(
            OutboundEmail.dedupe_key.in_(list(keys)))))
        todo = [i for key, i in keys.items() if key not in sent]
        report.already_sent += len(ids) - len(todo)
        if todo:
            jobs, recipients = _statement_emails(year, todo, settings=settings, sender=sender,
                                                 now=now, subject=subject, filename=filename)
            if read is not None:
                read()
            messages = (build_many(jobs) if build_many is not None
                        else map(build_statement_email, jobs))
            report.email_ids = store_emails(
                [(email, subject, dedupe_key(year, supporter_id), message)
                 for (supporter_id, email), message in zip(recipients, messages, strict=True)],
                deliver_after_commit=False)
            report.queued += len(report.email_ids)
            # Fewer stored than built: queued meanwhile by a run going at the same time.
            report.already_sent += len(jobs) - len(report.email_ids)
        else:
            report.email_ids = []
        report.done += len(ids)
        report.seconds = time.perf_counter() - started
        yield report


@dataclass
class StatementRun:
    report: StatementBatch | None  # the running totals after the last batch; None: no batch
    failed: int  # statements that could not be delivered now and stay queued

    @property
    def finished(self) -> bool:
        return self.report is not None and self.report.done >= self.report.donors


def year_ended(year: int, *, zone: tzinfo, now: datetime) -> bool:
    """Whether ``year`` is over in the organisation's zone (receipt years follow it)."""
    return now.astimezone(zone) >= datetime(year + 1, 1, 1, tzinfo=zone)


def check_year_ended(year: int, *, zone: tzinfo, now: datetime, force: bool = False) -> None:
    """Statements sent before the year ends would leave out every gift still to come (and
    no statement would list them): refused, unless ``force``."""
    if not force and not year_ended(year, zone=zone, now=now):
        raise FinanceError(f"{year} has not ended yet in {zone}: statements sent now would "
                           "leave out the gifts still to come. Send them in January, or "
                           "force it.", field="force")


def send_statements(year: int, *, settings: DocumentSettings, mailer: Mailer, now: datetime,
                    commit: Callable[[], None], zone: tzinfo, force: bool = False,
                    batch: int = 500,
                    build_many: Callable[[list[StatementEmail]], Iterable[str]] | None = None,
                    seconds: float | None = None,
                    progress: Callable[[StatementBatch], None] | None = None) -> StatementRun:
    """Queue, commit (``commit``: the caller's, e.g. ``app.jobs.commit``) and deliver the
    year's statements batch by batch (``queue_statements``), from ``mailer``'s sender through
    its transport, calling ``progress`` after each.

    With ``seconds``, stop after the first batch that sent mail once that long has passed (a
    request's time box; batches of donors mailed earlier cost two queries and do not count);
    the rest is left for the next run. FinanceError when the year has no statement, or has
    not ended in ``zone`` and ``force`` is not set."""
    check_year_ended(year, zone=zone, now=now, force=force)
    started = time.monotonic()
    run = StatementRun(report=None, failed=0)
    batches = queue_statements(year, settings=settings, sender=mailer.sender, now=now, batch=batch,
                               build_many=build_many, read=commit)
    try:
        for run.report in batches:
            commit()
            run.failed += deliver_batch(run.report.email_ids, transport=mailer.transport)[1]
            if progress is not None:
                progress(run.report)
            if seconds is not None and run.report.email_ids \
                    and time.monotonic() - started >= seconds:
                break
    finally:
        batches.close()
    return run


# -- corrected statements ---------------------------------------------------------------------
# A donor's statement is built from their receipts as they stand when it is queued. A receipt
# of the year issued or voided after that (a refund, a dispute, a gift recorded late, an
# offline gift corrected) means the statement they hold is wrong: they are due a corrected one,
# queued under ``statement:<year>:<supporter id>:c<n>`` (the n-th statement after the first),
# so a rerun or a concurrent run sends each correction once.


def _statements_sent(year: int) -> dict[int, tuple[int, datetime]]:
    """For each donor sent a statement of ``year``: how many (first and corrections), and
    when the last was queued."""
    prefix = f"statement:{year}:"
    sent: dict[int, tuple[int, datetime]] = {}
    for key, queued in db.session.execute(
            select(OutboundEmail.dedupe_key, OutboundEmail.created_at)
            .where(OutboundEmail.dedupe_key.startswith(prefix, autoescape=True))):
        supporter_id = int(key[len(prefix):].partition(":")[0])
        count, last = sent.get(supporter_id, (0, queued))
        sent[supporter_id] = (count + 1, max(last, queued))
    return sent


def corrections_due(year: int) -> list[int]:
    """The donors whose statement of ``year`` went out before one of their receipts of the
    year was issued or voided, and who still have receipted gifts that year, by id."""
    sent = _statements_sent(year)
    if not sent:
        return []
    changed = db.session.execute(
        select(Gift.supporter_id, func.max(Receipt.issued_at), func.max(Receipt.voided_at))
        .select_from(Receipt).join(Gift, Gift.id == Receipt.gift_id)
        .where(Receipt.year == year).group_by(Gift.supporter_id)).all()
    current = set(db.session.scalars(
        select(Gift.supporter_id).distinct().select_from(Receipt)
        .join(Gift, Gift.id == Receipt.gift_id).where(*_receipted(year))))
    due = []
    for supporter_id, issued, voided in changed:
        if supporter_id not in sent or supporter_id not in current:
            continue
        last = sent[supporter_id][1]
        if max(t for t in (issued, voided) if t is not None) > last:
            due.append(supporter_id)
    return sorted(due)


def queue_corrections(year: int, *, settings: DocumentSettings, sender: str,
                      now: datetime) -> list[int]:
    """Queue a corrected statement for every donor :func:`corrections_due`; returns the ids
    of the emails queued, for the caller to commit and then deliver (``deliver_batch``)."""
    due = corrections_due(year)
    if not due:
        return []
    sent = _statements_sent(year)
    subject = f"Your corrected {year} giving statement from {settings.org.name}"
    jobs, recipients = _statement_emails(year, due, settings=settings, sender=sender, now=now,
                                         subject=subject,
                                         filename=f"giving-statement-{year}-corrected.pdf",
                                         corrected=True)
    messages = map(build_statement_email, jobs)
    return store_emails(
        [(email, subject, f"{dedupe_key(year, supporter_id)}:c{sent[supporter_id][0]}", message)
         for (supporter_id, email), message in zip(recipients, messages, strict=True)],
        deliver_after_commit=False)


def send_corrections(year: int, *, settings: DocumentSettings, mailer: Mailer, now: datetime,
                     commit: Callable[[], None]) -> tuple[int, int]:
    """Queue, commit and deliver the corrected statements due; returns (queued, not
    delivered now: they stay queued for ``flask mail send-pending``)."""
    email_ids = queue_corrections(year, settings=settings, sender=mailer.sender, now=now)
    commit()
    if not email_ids:
        return 0, 0
    return len(email_ids), deliver_batch(email_ids, transport=mailer.transport)[1]
