"""``flask members``: who holds a membership perk now, for the perks the newsroom delivers by
hand (the supporters' letter, the call with the founder, the thanks in the annual report)."""

from __future__ import annotations

import csv

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.accounts.membership import MembershipConfigError, levels_from_config, members_with_perk
from app.db import utcnow
from app.finance.exports import inert

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


def init_app(app: Flask) -> None:
    app.cli.add_command(members_cli)
