"""``flask sandbox`` and ``flask payments``: renewals in the sandbox, and the provider events and
fees a lost job left behind."""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.cli import parse_now
from app.db import utcnow, writing_command
from app.payments.base import ProviderError
from app.payments.events import event_settings, process_pending, settle_pending
from app.payments.providers import current_provider
from app.payments.renewals import RenewalError, renew_due_plans
from app.payments.sync import sync_events

sandbox_cli = AppGroup("sandbox", help="The sandbox payment provider.")


@sandbox_cli.command("renew")
@writing_command
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Pretend it is this UTC time (to renew plans that would be due then).")
def renew_command(now_text: str | None) -> None:
    """Charge every sandbox plan that is due, as its monthly or yearly renewal."""
    try:
        renewed = renew_due_plans(parse_now(now_text))
    except RenewalError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"renewed {renewed} plan period(s)")


payments_cli = AppGroup("payments", help="Payment provider events.")


@payments_cli.command("process-pending")
@writing_command
@click.option("--older-than", default=60, show_default=True, metavar="SECONDS",
              help="Only events received at least this long ago (the queue may still hold "
                   "newer ones).")
def process_pending_command(older_than: int) -> None:
    """Apply stored webhook events that were never processed (a lost queue job, say); one
    that cannot be applied is reported with the reason, and the command fails at the end."""
    report = process_pending(received_before=utcnow() - timedelta(seconds=older_than),
                             settings=event_settings(current_app.config))
    click.echo(f"applied {report.applied} event(s); {report.waiting} still wait for an earlier "
               "event")
    for failure in report.failed:
        click.echo(f"could not apply {failure.event_id} ({failure.type}): {failure.reason}",
                   err=True)
    if report.failed:
        raise SystemExit(1)


@payments_cli.command("settle-fees")
@writing_command
@click.option("--older-than", default=60, show_default=True, metavar="SECONDS",
              help="Only charges recorded at least this long ago.")
def settle_fees_command(older_than: int) -> None:
    """Ask the payment provider again for the fee of each charge that has none yet."""
    settled, unknown = settle_pending(current_provider(),
                                      occurred_before=utcnow() - timedelta(seconds=older_than))
    click.echo(f"settled {settled} fee(s); {unknown} still unknown")


WINDOW = re.compile(r"([0-9]{1,6})([mhd])")
WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _window(text: str) -> timedelta:
    match = WINDOW.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: a number of minutes, hours or days, e.g. 72h, 3d")
    return timedelta(**{WINDOW_UNITS[match[2]]: int(match[1])})


@payments_cli.command("sync")
@writing_command
@click.option("--since", "since_text", default="72h", show_default=True, metavar="AGE",
              help="How far back to look: 90m, 72h, 30d (Stripe keeps events 30 days).")
def sync_command(since_text: str) -> None:
    """Apply the provider's events that never arrived as webhooks (the catch-up sync)."""
    try:
        report = sync_events(current_provider(), since=utcnow() - _window(since_text),
                             settings=event_settings(current_app.config))
    except ProviderError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"listed {report.listed} event(s): {report.applied} applied, {report.known} "
               f"already stored, {len(report.waiting)} still wait for another event, "
               f"{len(report.failed)} failed")
    for event_id, reason in report.failed:
        click.echo(f"failed: {event_id}: {reason}", err=True)
    if report.failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(payments_cli)
