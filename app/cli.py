"""The command line: thin wrappers over the services (``flask --app app <command>``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import jobs
from app.db import utcnow
from app.extensions import db


def _utc(text: str | None) -> datetime:
    """A ``--now`` option's time in UTC (read as UTC when it names no zone); now without one."""
    if not text:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date and time, e.g. "
                                 "2026-12-31T23:30:00-05:00", param_hint="'--now'") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@click.command("seed-demo")
@click.option("--gifts", type=click.IntRange(min=0), default=0,
              help="Also add this many paid gifts spread over the live campaigns (benchmarks).")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Load the demo as it would be at this time (UTC unless it names a zone).")
def seed_demo_command(gifts: int, now_text: str | None) -> None:
    """Load the demo campaigns and their history (idempotent): the occasions of the calendar
    around now, ended, live and scheduled, with their gifts so far."""
    from app.campaigns.models import Campaign
    from app.demo import generate_gifts, seed_demo
    from app.news.demo import seed_news
    from app.templating import org_zone

    now = _utc(now_text)
    zone = org_zone()
    created = seed_demo(now, zone=zone)
    jobs.commit()
    click.echo(f"demo campaigns created: {', '.join(created) or 'none (already there)'}")
    categories, stories = seed_news(now, zone)
    jobs.commit()
    click.echo(f"news categories created: {len(categories)}; sample feed: {stories.new} new "
               f"stories, {stories.unchanged + stories.updated} already there")
    if gifts:
        campaigns = [c for c in db.session.scalars(select(Campaign)) if c.is_live(now)]
        started = time.perf_counter()
        done = 0
        step = 100_000
        while done < gifts:
            chunk = min(step, gifts - done)
            generate_gifts(campaigns, chunk, now=now)
            jobs.commit()
            done += chunk
            click.echo(f"  {done:,}/{gifts:,} gifts ({time.perf_counter() - started:.1f}s)")
        click.echo(f"added {gifts:,} gifts in {time.perf_counter() - started:.1f}s")
        _demo_receipts(gifts)


def _demo_receipts(gifts: int) -> None:
    """Number the bulk gifts' receipts, in the order they were paid (one transaction)."""
    from app.demo import issue_receipts
    from app.templating import org_zone

    started = time.perf_counter()
    every = max(100_000, gifts // 10)
    shown = [0]

    def progress(done: int) -> None:
        if done - shown[0] >= every:
            shown[0] = done
            click.echo(f"  {done:,} receipts ({time.perf_counter() - started:.1f}s)")

    issued = issue_receipts(org_zone(), progress=progress)
    jobs.commit()
    click.echo(f"numbered {issued:,} receipts in {time.perf_counter() - started:.1f}s")


sandbox_cli = AppGroup("sandbox", help="The sandbox payment provider.")


@sandbox_cli.command("renew")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Pretend it is this UTC time (to renew plans that would be due then).")
def renew_command(now_text: str | None) -> None:
    """Charge every sandbox plan that is due, as its monthly or yearly renewal."""
    from app.giving.services import due_plans
    from app.payments.ledger import last_card
    from app.payments.providers import provider_named
    from app.payments.sandbox_views import deliver

    provider = provider_named("sandbox")
    if provider is None:
        raise click.ClickException("The sandbox is not the payment provider here.")
    now = _utc(now_text)
    renewed = 0
    # A plan several periods behind catches up one period per pass.
    while plans := due_plans("sandbox", now):
        for plan in plans:
            period = plan.periods_paid
            event = provider.invoice_paid_event(
                subscription_id=plan.provider_subscription_id,
                customer=plan.provider_customer_id, period=plan.periods_paid + 1,
                amount=plan.total, currency=plan.currency,
                metadata={"campaign": plan.campaign.slug}, now=time.time(),
                card=last_card(plan.id))
            deliver(provider, event, defer=False)  # applied now, even with a job queue
            if db.session.get(type(plan), plan.id).periods_paid == period:
                raise click.ClickException(
                    f"plan {plan.id}: the renewal was not recorded; see the provider event log")
            renewed += 1
    click.echo(f"renewed {renewed} plan period(s)")


jobs_cli = AppGroup("jobs", help="Background jobs (with REDIS_URL).")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def jobs_worker_command(burst: bool, log_level: str) -> None:
    """Run queued jobs (webhook events, mail, fees) until stopped; retries wait their turn."""
    try:
        worker = jobs.worker(current_app._get_current_object())
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    worker.work(burst=burst, with_scheduler=True, logging_level=log_level)


payments_cli = AppGroup("payments", help="Payment provider events.")


@payments_cli.command("process-pending")
@click.option("--older-than", default=60, show_default=True, metavar="SECONDS",
              help="Only events received at least this long ago (the queue may still hold "
                   "newer ones).")
def process_pending_command(older_than: int) -> None:
    """Apply stored webhook events that were never processed (a lost queue job, say)."""
    from datetime import timedelta

    from app.payments.events import process_pending

    applied, waiting = process_pending(received_before=utcnow() - timedelta(seconds=older_than))
    click.echo(f"applied {applied} event(s); {waiting} still wait for an earlier event")


@payments_cli.command("settle-fees")
@click.option("--older-than", default=60, show_default=True, metavar="SECONDS",
              help="Only charges recorded at least this long ago.")
def settle_fees_command(older_than: int) -> None:
    """Ask the payment provider again for the fee of each charge that has none yet."""
    from datetime import timedelta

    from app.payments.events import settle_pending

    settled, unknown = settle_pending(occurred_before=utcnow() - timedelta(seconds=older_than))
    click.echo(f"settled {settled} fee(s); {unknown} still unknown")


mail_cli = AppGroup("mail", help="Outgoing mail.")


@mail_cli.command("send-pending")
def send_pending_command() -> None:
    """Deliver every queued message that has not gone out yet (after an SMTP outage, say)."""
    from app.mail import deliver_pending

    sent, failed = deliver_pending()
    click.echo(f"sent {sent}, failed {failed}")
    if failed:
        raise SystemExit(1)


news_cli = AppGroup("news", help="News: feed ingest, categories, the daily email.")




@news_cli.command("ingest")
@click.argument("source", metavar="URL-OR-FILE")
def news_ingest_command(source: str) -> None:
    """Store the new stories of an RSS or Atom feed (a URL or a file), tagged by category."""
    from app.news.ingest import FeedError, ingest_feed

    try:
        result = ingest_feed(source, now=utcnow(),
                             analysis_terms=current_app.config["NEWS_ANALYSIS_TERMS"])
    except FeedError as exc:
        raise click.ClickException(str(exc)) from None
    jobs.commit()
    if result.warning:
        click.echo(f"warning: the feed is malformed but was read: {result.warning}", err=True)
    click.echo(f"{result.new} new, {result.updated} updated, {result.unchanged} already there, "
               f"{result.skipped} skipped (no title or link), "
               f"{result.refused} refused (a link that is no http(s) address)")
    if result.unknown_terms:
        click.echo("categories not known here (ignored): "
                   + ", ".join(sorted(result.unknown_terms, key=str.casefold)))


@news_cli.command("send-digest")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Pretend it is this UTC time (the day's window is the 24 hours before it).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Messages claimed, sent and recorded together.")
@click.option("--reclaim-after", type=click.IntRange(min=0), default=30, show_default=True,
              metavar="MINUTES", help="Retry messages a crashed run left claimed this long ago.")
@click.option("--progress-every", type=click.IntRange(min=1), default=5000, show_default=True,
              metavar="N", help="Report progress every N messages.")
def news_send_digest_command(now_text: str | None, batch: int, reclaim_after: int,
                             progress_every: int) -> None:
    """Send today's news email to every confirmed subscriber, once each (safe to rerun)."""
    from datetime import timedelta

    from app.mail import transport_from_config
    from app.news.digest import DigestAborted, DigestSettings, send_digest
    from app.news.views import signer
    from app.urls import external_url as url

    last = [0]

    def progress(report) -> None:
        done = report.sent + report.failed
        if done - last[0] >= progress_every:
            last[0] = done
            click.echo(f"  {report.sent:,} sent, {report.failed:,} failed "
                       f"({report.rate:,.0f} emails/s)")

    try:
        report = send_digest(
            now=_utc(now_text), transport=transport_from_config(current_app.config),
            signer=signer(), settings=DigestSettings.from_config(current_app.config),
            unsubscribe_url=lambda token: url("news.unsubscribe_page", token=token),
            manage_url=url("news.my_news"), subscribe_url=url("news.subscribe_page"),
            give_url=url("campaigns.home"),
            batch_size=batch, reclaim_after=timedelta(minutes=reclaim_after),
            progress=progress)
    except DigestAborted as exc:
        report = exc.report
        click.echo(f"stopped: {exc}", err=True)
        click.echo(f"{report.sent:,} sent, {report.failed:,} failed; run again to send the rest")
        raise SystemExit(1) from None
    window = f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%Y-%m-%d %H:%M} UTC"
    if not report.articles:
        click.echo(f"digest {report.digest_date}: no stories published from {window}; "
                   "nothing sent")
        return
    click.echo(f"digest {report.digest_date}: {report.articles} stories from {window}, "
               f"{report.editions} edition(s)")
    click.echo(f"sent {report.sent:,}, failed {report.failed:,}, already sent earlier "
               f"{report.sent_before:,} in {report.seconds:.1f}s ({report.rate:,.0f} emails/s)")
    if report.in_flight:
        click.echo(f"{report.in_flight:,} message(s) claimed by another run, or by one that "
                   f"crashed: a run after {reclaim_after} minutes retries them")
    if report.failed:
        raise SystemExit(1)


categories_cli = AppGroup("categories", help="The regions and topics readers follow.")
news_cli.add_command(categories_cli)


@categories_cli.command("list")
def categories_list_command() -> None:
    """Every category: kind, slug, name."""
    from app.news.services import list_categories

    for category in list_categories():
        click.echo(f"{category.kind.value:<7} {category.slug:<40} {category.name}")


@categories_cli.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(["region", "topic"]), required=True)
@click.option("--slug", help="How feeds name it (default: from the name).")
def categories_add_command(name: str, kind: str, slug: str | None) -> None:
    """Add a category, or rename the one with this slug."""
    from app.news.models import CategoryKind
    from app.news.services import NewsError, add_category

    try:
        category, created = add_category(name, CategoryKind(kind), slug=slug)
    except NewsError as exc:
        raise click.ClickException(exc.message) from None
    jobs.commit()
    click.echo(f"{'added' if created else 'updated'} {category.kind.value} {category.slug}: "
               f"{category.name}")


@categories_cli.command("remove")
@click.argument("slug")
def categories_remove_command(slug: str) -> None:
    """Remove a category with its follows and story tags (the stories stay)."""
    from app.news.services import remove_category

    if not remove_category(slug):
        raise click.ClickException(f"no category {slug!r}")
    jobs.commit()
    click.echo(f"removed {slug}")


finance_cli = AppGroup("finance", help="Finance: statements, exports, reconciliation, offline "
                                       "gifts, receipts.")


def _finance_error(exc) -> click.ClickException:
    return click.ClickException(exc.message)


def _zone():
    from app.templating import org_zone

    return org_zone()


def _actor(label: str | None):
    import getpass

    from app.audit import Actor

    return Actor(id=None, label=label or f"cli:{getpass.getuser()}")


@finance_cli.command("statements")
@click.option("--year", type=click.IntRange(1900, 9999), required=True,
              help="The calendar year, in the organisation's zone.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Donors whose statements are queued and committed together.")
@click.option("--progress-every", type=click.IntRange(min=1), default=1000, show_default=True,
              metavar="N", help="Report progress every N donors.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes rendering PDFs beside this one (0: one per CPU; 1: none).")
def finance_statements_command(year: int, batch: int, progress_every: int,
                               workers: int) -> None:
    """Email each donor a PDF statement of the year's gifts, once (safe to rerun)."""
    import dataclasses
    import multiprocessing
    import os
    import tempfile
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import ExitStack

    from flask import current_app

    from app.finance.common import FinanceError
    from app.finance.documents import DocumentSettings
    from app.finance.statements import build_statement_email

    settings = DocumentSettings.from_config(current_app.config)
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

            def build_many(jobs):
                return pool.map(build_statement_email, jobs, chunksize=16)

        try:
            report, failed = _send_statements(year, settings, batch, progress_every,
                                              build_many)
        except FinanceError as exc:
            raise _finance_error(exc) from None
    if report is None:
        return
    click.echo(f"statements {year}: {report.queued:,} emailed now, {report.already_sent:,} "
               f"already emailed earlier, {report.donors:,} donors in {report.seconds:.1f}s")
    if failed:
        click.echo(f"{failed:,} could not be delivered now and stay queued: run `flask mail "
                   "send-pending` once the mail server is back", err=True)
        raise SystemExit(1)


def _send_statements(year, settings, batch, progress_every, build_many):
    """Queue, commit and deliver batch by batch, reporting progress."""
    from flask import current_app

    from app.finance.statements import queue_statements
    from app.mail import deliver_batch

    report = None
    reported = failed = 0
    for report in queue_statements(year, settings=settings,
                                   sender=current_app.config["MAIL_FROM"], now=utcnow(),
                                   batch=batch, build_many=build_many):
        jobs.commit()
        failed += deliver_batch(report.email_ids)[1]
        if report.done - reported >= progress_every or report.done == report.donors:
            reported = report.done
            click.echo(f"  {report.done:,}/{report.donors:,} donors "
                       f"({report.queued:,} emailed, {report.already_sent:,} already "
                       f"emailed earlier; {report.seconds:.1f}s)")
    return report, failed


def _period(first: str, last: str):
    from app.finance.common import make_period

    return make_period(first, last, _zone())


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
    import os
    import sys
    import tempfile

    from app.finance.common import FinanceError
    from app.finance.exports import export_filter, write_csv, write_xlsx

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


@finance_cli.command("reconcile")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD")
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD")
@click.option("--campaign", metavar="SLUG", help="Only this campaign.")
def finance_reconcile_command(first: str, last: str, campaign: str | None) -> None:
    """Gross, provider fees, refunds, disputes and net for a period, from the ledger."""
    from app.finance.common import FinanceError, campaign_by_slug, decimal_text
    from app.finance.reconciliation import reconcile

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
                   f"{'refunds':>12} {'disputes':>12} {'net':>14}")
        for line in lines:
            money = [decimal_text(v, line.currency) for v in
                     (line.gross, line.fees, line.refunds, line.disputes, line.net)]
            click.echo(f"  {line.label[:28]:<28} {line.currency:<4} {line.charges:>8,} "
                       f"{money[0]:>14} {money[1]:>12} {money[2]:>12} {money[3]:>12} "
                       f"{money[4]:>14}")

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
    from app.finance.common import decimal_text

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
    from app.money import AmountError, parse_amount

    if text is None:
        return None
    try:
        return parse_amount(text, currency)
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


offline_cli = AppGroup("offline-gift", help="Cheques, wires and cash: record, correct, reverse.")
finance_cli.add_command(offline_cli)


@offline_cli.command("record")
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
    from app.finance.common import FinanceError, campaign_by_slug, make_period
    from app.finance.offline import OfflineGift, record_offline_gift
    from app.giving.models import Dedication

    try:
        day = make_period(received, received, _zone()).first
        currency = (currency or campaign_by_slug(campaign).currency).upper()
        entry = OfflineGift(
            received_on=day, method=method, reference=reference, donor_name=donor_name,
            email=email, campaign=campaign, amount=_amount(amount, currency, "--amount"),
            currency=currency, dedication=Dedication(dedication) if dedication else None,
            dedication_name=dedication_name,
            goods_value=_amount(goods_value, currency, "--goods-value"),
            goods_description=goods_description, anonymous=anonymous)
        gift = record_offline_gift(entry, actor=_actor(by), zone=_zone(), now=utcnow(),
                                   send_receipt=not no_email)
        receipt = _current_receipt_number(gift)
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"recorded gift {gift.id}: {method} {_charge_reference(gift)}, receipt {receipt}")


def _current_receipt_number(gift) -> str:
    from app.finance.receipts import current_receipt

    receipt = current_receipt(gift)
    return receipt.number if receipt else "none"


def _charge_reference(gift) -> str:
    from app.payments.models import Payment, PaymentKind

    return db.session.scalar(select(Payment.provider_id).where(
        Payment.gift_id == gift.id, Payment.kind == PaymentKind.CHARGE))


@offline_cli.command("correct")
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
    from app.finance.common import FinanceError, campaign_by_slug, make_period
    from app.finance.offline import correct_offline_gift, get_offline_gift
    from app.giving.models import Dedication

    try:
        gift, _ = get_offline_gift(gift_id)
        currency = campaign_by_slug(campaign).currency if campaign else gift.currency
        changes = {}
        if received:
            changes["received_on"] = make_period(received, received, _zone()).first
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
                                    zone=_zone(), now=utcnow(), send_receipt=not no_email)
        receipt = _current_receipt_number(gift)
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"corrected gift {gift_id}; current receipt {receipt}")


@offline_cli.command("reverse")
@click.argument("gift_id", type=int)
@click.option("--reason", required=True, help="Why (a bounced cheque, an entry made by mistake).")
@click.option("--by", "by", metavar="LABEL")
def offline_reverse_command(gift_id: int, reason: str, by: str | None) -> None:
    """Take an offline gift out of the books: a refund in the ledger, its receipt voided."""
    from app.finance.common import FinanceError
    from app.finance.offline import reverse_offline_gift

    try:
        reverse_offline_gift(gift_id, reason=reason, actor=_actor(by), now=utcnow())
        jobs.commit()
    except FinanceError as exc:
        raise _finance_error(exc) from None
    click.echo(f"reversed gift {gift_id}; its receipt is void")


@finance_cli.command("receipt")
@click.argument("number")
@click.option("--output", "-o", required=True, metavar="FILE.pdf")
def finance_receipt_command(number: str, output: str) -> None:
    """Write one receipt as a PDF (a void one says so)."""
    from flask import current_app

    from app.finance.common import FinanceError
    from app.finance.documents import DocumentSettings, get_receipt, receipt_pdf

    try:
        receipt = get_receipt(number)
    except FinanceError as exc:
        raise _finance_error(exc) from None
    data = receipt_pdf(receipt, DocumentSettings.from_config(current_app.config))
    with open(output, "wb") as out:
        out.write(data)
    click.echo(f"receipt {receipt.number} ({receipt.status.value}) written to {output}")


def register_commands(app: Flask) -> None:
    from app.accounts.cli import members_cli
    from app.staff.cli import users_cli

    app.cli.add_command(seed_demo_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(members_cli)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(payments_cli)
    app.cli.add_command(news_cli)
    app.cli.add_command(finance_cli)
