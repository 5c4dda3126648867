"""``flask members``: who holds a membership perk now, for the perks the newsroom delivers by
hand (the supporters' letter, the call with the founder, the thanks in the annual report).
``flask supporters import``: supporters and subscribers from another platform."""

from __future__ import annotations

import csv
import getpass
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app import jobs
from app.accounts.imports import import_supporters, opt_in_sender
from app.accounts.membership import MembershipConfigError, levels_from_config, members_with_perk
from app.audit import Actor
from app.cli import finish_import, import_progress
from app.db import utcnow, writing_command
from app.finance.exports import inert
from app.imports import ImportFileError
from app.payments.providers import current_provider
from app.templating import org_zone
from app.urls import external_url

members_cli = AppGroup("members", help="Membership: who holds which perk.")

COLUMNS = ["supporter_id", "name", "email", "level", "address_line1", "address_line2", "city",
           "region", "postal_code", "country"]


@members_cli.command("list")
@click.option("--perk", required=True, metavar="KEY",
              help="A perk's key from MEMBERSHIP_PERKS, e.g. supporter_letter or founder_call.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", lazy=True), default="-",
              help="The CSV file to write (default: standard output).")
def members_list_command(perk: str, output) -> None:
    """Write, as CSV, every supporter who has the perk today (their level from the giving of
    the last 12 months), with their postal address for a letter."""
    levels = levels_from_config(current_app.config)
    try:
        members = members_with_perk(perk, levels=levels, now=utcnow())
    except MembershipConfigError as exc:
        known = ", ".join(current_app.config["MEMBERSHIP_PERKS"])
        raise click.ClickException(f"{exc} (perks: {known})") from None
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for supporter, level in members:
        writer.writerow([supporter.id, inert(supporter.name), inert(supporter.email), level.name,
                         *(inert(getattr(supporter, c)) for c in COLUMNS[4:])])
    click.echo(f"{len(members)} supporter(s) with the perk {perk!r}", err=True)


supporters_cli = AppGroup("supporters", help="Supporters: import from another platform.")


@supporters_cli.command("import")
@writing_command
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True,
              help="Write nothing (Stripe is read, not written); report what would happen.")
@click.option("--send-opt-in", is_flag=True,
              help="Send the daily email's opt-in mail to the subscribers the file names that "
                   "have not confirmed (none is sent without this).")
@click.option("--match-stripe-by-email", is_flag=True,
              help="For rows with no Stripe ids, find the Stripe customer by email (the one "
                   "with the newest subscription) and adopt their live subscription.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the refused rows (errors.csv: fix them and import that "
                   "file). Default: FILE's name with .errors.csv, when rows are refused.")
@click.option("--by", "by", metavar="LABEL",
              help="Who is importing (audit log); default cli:<user>.")
def supporters_import_command(file: Path, dry_run: bool, send_opt_in: bool,
                              match_stripe_by_email: bool, errors_path: Path | None,
                              by: str | None) -> None:
    """Import supporters and daily-email subscribers from FILE, a CSV in this app's columns or
    Ghost's member export (README, "Importing supporters"). Keyed on the email: a rerun
    changes nothing. Exits 1 when rows were refused."""
    config = current_app.config
    now = utcnow()

    try:
        report = import_supporters(
            file, file_name=file.name, max_bytes=config["IMPORT_MAX_BYTES"], dry_run=dry_run,
            zone=org_zone(), now=now, currency=config["CURRENCIES"][0],
            org_name=config["ORG_NAME"],
            provider=current_provider(), commit=jobs.commit,
            actor=Actor(id=None, label=by or f"cli:{getpass.getuser()}"),
            match_by_email=match_stripe_by_email,
            send_opt_in=opt_in_sender(config, now=now, link=external_url) if send_opt_in
            else None, progress=import_progress)
    except ImportFileError as exc:
        raise click.ClickException(exc.message) from None
    finish_import(report, dry_run=dry_run, file=file, errors_path=errors_path)


def init_app(app: Flask) -> None:
    app.cli.add_command(members_cli)
    app.cli.add_command(supporters_cli)
