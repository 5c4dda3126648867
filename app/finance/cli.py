"""``flask finance``: statements, exports, reconciliation, offline gifts, receipts."""

from __future__ import annotations

import dataclasses
import getpass
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import jobs
from app.audit import Actor
from app.cli import finish_import, import_progress
from app.db import utcnow, writing_command
from app.extensions import db
from app.finance.common import FinanceError, campaign_by_slug, decimal_text, make_period
from app.finance.documents import DocumentSettings, get_receipt, receipt_pdf
from app.finance.exports import export_filter, write_csv, write_xlsx
from app.finance.imports import import_gifts
from app.finance.offline import (
    OfflineGift,
    correct_offline_gift,
    get_offline_gift,
    record_offline_gift,
    reverse_offline_gift,
)
from app.finance.receipts import current_receipt
from app.finance.reconciliation import reconcile
from app.finance.statements import build_statement_email, send_corrections, send_statements
from app.giving.models import Dedication
from app.imports import ImportFileError
from app.mail import current_mailer
from app.money import AmountError, parse_amount
from app.payments.models import Payment, PaymentKind
from app.templating import org_zone

finance_cli = AppGroup("finance", help="Finance: statements, exports, reconciliation, offline "
                                       "gifts, receipts.")


def _finance_error(exc) -> click.ClickException:
    return click.ClickException(exc.message)


def _actor(label: str | None):
    return Actor(id=None, label=label or f"cli:{getpass.getuser()}")


@finance_cli.command("statements")
@writing_command
@click.option("--year", type=click.IntRange(1900, 9999), required=True,
              help="The calendar year, in the organisation's zone.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Donors whose statements are queued and committed together.")
@click.option("--progress-every", type=click.IntRange(min=1), default=1000, show_default=True,
              metavar="N", help="Report progress every N donors.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes rendering PDFs beside this one (0: one per CPU; 1: none).")
@click.option("--force", is_flag=True,
              help="Send although the year has not ended yet in the organisation's zone.")
@click.option("--corrections", is_flag=True,
              help="Instead: email a corrected statement to each donor whose receipted gifts "
                   "of the year changed after theirs was sent (once each).")
def finance_statements_command(year: int, batch: int, progress_every: int, workers: int,
                               force: bool, corrections: bool) -> None:
    """Email each donor a PDF statement of the year's gifts, once (safe to rerun). A year that
    has not ended is refused unless --force."""
    settings = DocumentSettings.from_config(current_app.config)
    if corrections:
        queued, failed = send_corrections(year, settings=settings, now=utcnow(),
                                          mailer=current_mailer(),
                                          commit=jobs.commit)
        click.echo(f"statements {year}: {queued:,} corrected statements emailed now")
        if failed:
            click.echo(f"{failed:,} could not be delivered now and stay queued: run `flask "
                       "mail send-pending` once the mail server is back", err=True)
            raise SystemExit(1)
        return
    workers = workers or os.cpu_count() or 1
    with ExitStack() as stack:
        build_many = None
        if workers > 1:
            # Fresh interpreters (spawn) build the PDFs and messages, sharing one folder of
            # cut-down fonts that this process removes at the end; this one reads the
            # database, renders the email text and stores and sends the messages.
            fonts = stack.enter_context(tempfile.TemporaryDirectory(prefix="newsfund-fonts-"))
            settings = dataclasses.replace(
                settings, pdf=dataclasses.replace(settings.pdf, font_cache=fonts))
            pool = stack.enter_context(ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")))

            def build_many(emails):
                return pool.map(build_statement_email, emails, chunksize=16)

        last = [0]

        def progress(report) -> None:
            if report.done - last[0] >= progress_every or report.done == report.donors:
                last[0] = report.done
                click.echo(f"  {report.done:,}/{report.donors:,} donors "
                           f"({report.queued:,} emailed, {report.already_sent:,} already "
                           f"emailed earlier; {report.seconds:.1f}s)")

        try:
            run = send_statements(year, settings=settings, mailer=current_mailer(),
                                  now=utcnow(), commit=jobs.commit, batch=batch,
                                  build_many=build_many, progress=progress, zone=org_zone(),
                                  force=force)
        except FinanceError as exc:
            raise _finance_error(exc) from None
    report, failed = run.report, run.failed
    if report is None:
        return
    click.echo(f"statements {year}: {report.queued:,} emailed now, {report.already_sent:,} "
               f"already emailed earlier, {report.donors:,} donors in {report.seconds:.1f}s")
    if failed:
        click.echo(f"{failed:,} could not be delivered now and stay queued: run `flask mail "
                   "send-pending` once the mail server is back", err=True)
        raise SystemExit(1)


def _period(first: str, last: str):
    return make_period(first, last, org_zone())


@finance_cli.command("export")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD",
              help="First day (in the organisation's zone).")
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD", help="Last day, included.")
@click.option("--campaign", metavar="SLUG", help="Only this campaign.")
@click.option("--status", help="Only gifts in this status (paid, partially_refunded, "
                                "refunded, disputed).")
@click.option("--frequency", help="Only one_time, monthly or annual gifts.")
@click.option("--currency", metavar="CODE", help="Only amounts in this currency.")
@click.option("--method", help="Only gifts paid this way (stripe, sandbox, cheque, wire, cash).")
@click.option("--payout", metavar="PO_ID", help="Only the rows this provider payout paid out.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="Default: from the output file's extension, else csv.")
@click.option("--output", "-o", required=True, metavar="FILE",
              help="Where to write; '-' writes CSV to standard output.")
def finance_export_command(first, last, campaign, status, frequency, currency, method, payout,
                           fmt, output) -> None:
    """Export the gifts on which money moved in a period, as CSV or XLSX (columns: README)."""
    fmt = fmt or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
    try:
        flt = export_filter(_period(first, last), campaign=campaign, status=status,
                            frequency=frequency, currency=currency, method=method,
                            payout=payout)
        if output == "-":
            if fmt != "csv":
                raise click.UsageError("Only CSV can be written to standard output.")
            rows = write_csv(flt, sys.stdout)
            sys.stdout.flush()
            click.echo(f"{rows:,} gift{'' if rows == 1 else 's'} exported", err=True)
            return
        # Written beside the target and renamed at the end: a failed export leaves nothing.
        folder = os.path.dirname(os.path.abspath(output))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=f".{fmt}")
        try:
            if fmt == "csv":
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                    rows = write_csv(flt, out)
            else:
                with os.fdopen(fd, "wb") as out:
                    rows = write_xlsx(flt, out)
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"{rows:,} gift{'' if rows == 1 else 's'} exported to {output} ({fmt})")


@finance_cli.command("import")
@writing_command
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True,
              help="Check every row and report what would happen; write nothing.")
@click.option("--errors", "errors_path", metavar="FILE",
              help="Where to write the refused rows (errors.csv: fix them and import that "
                   "file). Default: FILE's name with .errors.csv, when rows are refused.")
@click.option("--by", "by", metavar="LABEL", help="Who is importing (audit log); default "
                                                  "cli:<user>.")
def finance_import_command(file: str, dry_run: bool, errors_path: str | None,
                           by: str | None) -> None:
    """Import gift history in the columns of `flask finance export` (README). Sends nothing;
    a rerun adds nothing. Exits 1 when rows were refused."""
    try:
        report = import_gifts(file, dry_run=dry_run, zone=org_zone(), now=utcnow(),
                              actor=_actor(by), max_bytes=current_app.config["IMPORT_MAX_BYTES"],
                              commit=jobs.commit, name=os.path.basename(file),
                              progress=import_progress)
    except ImportFileError as exc:
        raise click.ClickException(exc.message) from None
    finish_import(report, dry_run=dry_run, file=file, errors_path=errors_path)


@finance_cli.command("reconcile")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD")
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD")
@click.option("--campaign", metavar="SLUG", help="Only this campaign.")
def finance_reconcile_command(first: str, last: str, campaign: str | None) -> None:
    """Gross, provider fees, refunds, disputes, dispute fees and net for a period, from the
    ledger."""
    try:
        period = _period(first, last)
        campaign_id = campaign_by_slug(campaign).id if campaign else None
    except FinanceError as exc:
        raise _finance_error(exc) from None
    result = reconcile(period, campaign_id=campaign_id)
    click.echo(f"Reconciliation {period}")
    if result.is_empty:
        click.echo("No money moved in this period.")
        _echo_payouts(result)
        return

    def table(title: str, lines) -> None:
        click.echo(f"\n{title}")
        click.echo(f"  {'':<28} {'cur':<4} {'charges':>8} {'gross':>14} {'fees':>12} "
                   f"{'refunds':>12} {'disputes':>12} {'dispute fees':>12} {'net':>14}")
        for line in lines:
            money = [decimal_text(v, line.currency) for v in
                     (line.gross, line.fees, line.refunds, line.disputes, line.dispute_fees,
                      line.net)]
            click.echo(f"  {line.label[:28]:<28} {line.currency:<4} {line.charges:>8,} "
                       f"{money[0]:>14} {money[1]:>12} {money[2]:>12} {money[3]:>12} "
                       f"{money[4]:>12} {money[5]:>14}")

    table("Totals by currency", result.by_currency)
    table("By campaign", result.by_campaign)
    table("By payment method", result.by_method)
    if result.fees_unknown:
        click.echo(f"\n{result.fees_unknown:,} charge(s) have a fee the provider has not "
                   "reported yet: counted as 0 in fees, so the net may be overstated.")
    _echo_payouts(result)


def _echo_payouts(result) -> None:
    """The payouts arriving in the period beside our ledger's rows each paid out (the
    reconciliation page's table); a difference other than 0 is flagged."""
    if not result.payouts:
        click.echo(f"\n{result.payouts_note}")
        return
    click.echo("\nPayouts (paid out by the provider; ours: the ledger rows it paid out)")
    click.echo(f"  {'payout':<30} {'arrives':<10} {'status':<10} {'cur':<4} {'paid out':>12} "
               f"{'our net':>12} {'not ours':>12} {'n':>4} {'difference':>12}")
    off = 0
    for p in result.payouts:
        head = (f"  {p.label[:30]:<30} {p.arrival_date.isoformat():<10} {p.status:<10} "
                f"{p.currency:<4} {decimal_text(p.amount, p.currency):>12}")
        if not p.listed:
            click.echo(f"{head} transactions not listed by the provider yet")
            continue
        flag = "" if not p.difference else "  <-- DOES NOT MATCH"
        off += bool(p.difference)
        click.echo(f"{head} {decimal_text(p.net, p.currency):>12} "
                   f"{decimal_text(p.unmatched_net, p.currency):>12} {p.unmatched_count:>4} "
                   f"{decimal_text(p.difference, p.currency):>12}{flag}")
    if off:
        click.echo(f"\n{off} payout(s) do not match the ledger: export its rows with "
                   "'flask finance export --payout po_...' and compare them with the payout "
                   "at the provider.")


def _amount(text: str | None, currency: str, name: str):
    if text is None:
        return None
    try:
        return parse_amount(text, currency)
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


offline_cli = AppGroup("offline-gift", help="Cheques, wires and cash: record, correct, reverse.")
finance_cli.add_command(offline_cli)


@offline_cli.command("record")
@writing_command
@click.option("--date", "received", required=True, metavar="YYYY-MM-DD",
              help="The day the money was received (organisation's zone).")
@click.option("--method", type=click.Choice(["cheque", "wire", "cash"]), required=True)
@click.option("--reference", help="Cheque number or bank reference (made up for cash if none).")
@click.option("--name", "donor_name", required=True, help="The donor's name.")
@click.option("--email", required=True, help="The donor's email (the receipt is sent there).")
@click.option("--campaign", required=True, metavar="SLUG")
@click.option("--amount", required=True, help="In the campaign's currency, e.g. 250.00.")
@click.option("--currency", metavar="CODE", help="Default: the campaign's.")
@click.option("--dedication", type=click.Choice(["honour", "memory"]))
@click.option("--dedication-name")
@click.option("--goods-value", help="Fair-market value of goods or services given in return.")
@click.option("--goods-description", help="What they were (e.g. 'a gala dinner ticket').")
@click.option("--anonymous", is_flag=True, help="Do not name the donor publicly.")
@click.option("--no-email", is_flag=True, help="Do not email the receipt.")
@click.option("--by", "by", metavar="LABEL", help="Who is recording it (audit log); default "
                                                  "cli:<user>.")
def offline_record_command(received, method, reference, donor_name, email, campaign, amount,
                           currency, dedication, dedication_name, goods_value,
                           goods_description, anonymous, no_email, by) -> None:
    """Record an offline gift; it gets a numbered receipt like any gift."""
    try:
        day = make_period(received, received, org_zone()).first
        currency = (currency or campaign_by_slug(campaign).currency).upper()
        entry = OfflineGift(
            received_on=day, method=method, reference=reference, donor_name=donor_name,
            email=email, campaign=campaign, amount=_amount(amount, currency, "--amount"),
            currency=currency, dedication=Dedication(dedication) if dedication else None,
            dedication_name=dedication_name,
            goods_value=_amount(goods_value, currency, "--goods-value"),
            goods_description=goods_description, anonymous=anonymous)
        gift = record_offline_gift(entry, actor=_actor(by), zone=org_zone(), now=utcnow(),
                                   send_receipt=not no_email)
        receipt = _current_receipt_number(gift)
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"recorded gift {gift.id}: {method} {_charge_reference(gift)}, receipt {receipt}")


def _current_receipt_number(gift) -> str:
    receipt = current_receipt(gift)
    return receipt.number if receipt else "none"


def _charge_reference(gift) -> str:
    return db.session.scalar(select(Payment.provider_id).where(
        Payment.gift_id == gift.id, Payment.kind == PaymentKind.CHARGE))


@offline_cli.command("correct")
@writing_command
@click.argument("gift_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--date", "received", metavar="YYYY-MM-DD")
@click.option("--method", type=click.Choice(["cheque", "wire", "cash"]))
@click.option("--reference")
@click.option("--name", "donor_name")
@click.option("--email")
@click.option("--campaign", metavar="SLUG")
@click.option("--amount")
@click.option("--dedication", type=click.Choice(["honour", "memory", "none"]))
@click.option("--dedication-name")
@click.option("--goods-value")
@click.option("--goods-description")
@click.option("--anonymous/--named", default=None)
@click.option("--no-email", is_flag=True, help="Do not email a corrected receipt.")
@click.option("--by", "by", metavar="LABEL")
def offline_correct_command(gift_id, reason, received, method, reference, donor_name, email,
                            campaign, amount, dedication, dedication_name, goods_value,
                            goods_description, anonymous, no_email, by) -> None:
    """Correct what was entered for an offline gift (audited; the receipt is reissued when
    what it shows changes)."""
    try:
        gift, _ = get_offline_gift(gift_id)
        currency = campaign_by_slug(campaign).currency if campaign else gift.currency
        changes = {}
        if received:
            changes["received_on"] = make_period(received, received, org_zone()).first
        for key, value in (("method", method), ("reference", reference),
                           ("donor_name", donor_name), ("email", email),
                           ("campaign", campaign), ("dedication_name", dedication_name),
                           ("goods_description", goods_description),
                           ("anonymous", anonymous)):
            if value is not None:
                changes[key] = value
        if amount is not None:
            changes["amount"] = _amount(amount, currency, "--amount")
        if goods_value is not None:
            changes["goods_value"] = _amount(goods_value, currency, "--goods-value") \
                if goods_value not in ("", "0") else None
        if dedication is not None:
            changes["dedication"] = None if dedication == "none" else Dedication(dedication)
        if not changes:
            raise click.UsageError("Nothing to correct: give at least one new value.")
        gift = correct_offline_gift(gift_id, changes, reason=reason, actor=_actor(by),
                                    zone=org_zone(), now=utcnow(), send_receipt=not no_email)
        receipt = _current_receipt_number(gift)
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"corrected gift {gift_id}; current receipt {receipt}")


@offline_cli.command("reverse")
@writing_command
@click.argument("gift_id", type=int)
@click.option("--reason", required=True, help="Why (a bounced cheque, an entry made by mistake).")
@click.option("--by", "by", metavar="LABEL")
def offline_reverse_command(gift_id: int, reason: str, by: str | None) -> None:
    """Take an offline gift out of the books: a refund in the ledger, its receipt voided."""
    try:
        reverse_offline_gift(gift_id, reason=reason, actor=_actor(by), zone=org_zone(),
                             now=utcnow())
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"reversed gift {gift_id}; its receipt is void")


@finance_cli.command("receipt")
@click.argument("number")
@click.option("--output", "-o", required=True, metavar="FILE.pdf")
def finance_receipt_command(number: str, output: str) -> None:
    """Write one receipt as a PDF (a void one says so)."""
    try:
        receipt = get_receipt(number)
    except FinanceError as exc:
        raise _finance_error(exc) from None
    data = receipt_pdf(receipt, DocumentSettings.from_config(current_app.config))
    with open(output, "wb") as out:
        out.write(data)
    click.echo(f"receipt {receipt.number} ({receipt.status.value}) written to {output}")


def init_app(app: Flask) -> None:
    app.cli.add_command(finance_cli)
