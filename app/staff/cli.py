"""``flask users``: staff accounts from the command line (the first admin has no one to grant
them a role in the browser); ``flask staff rollup``: the dashboards' snapshots rebuilt."""

from __future__ import annotations

import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import jobs
from app.accounts import tokens
from app.accounts.models import Supporter
from app.accounts.services import get_or_create_supporter, send_signin_link
from app.accounts.tokens import AccountLinks
from app.audit import Actor
from app.campaigns.models import Campaign
from app.db import utcnow, writing_command
from app.extensions import db
from app.staff import rollup
from app.staff.models import Role
from app.staff.roles import RoleError, grant_role, revoke_role, staff_members
from app.templating import org_zone
from app.urls import external_url

users_cli = AppGroup("users", help="Staff accounts and their roles.")


@users_cli.command("create")
@writing_command
@click.option("--email", required=True, help="The person's email address.")
@click.option("--role", "roles", required=True, multiple=True,
              type=click.Choice(["fundraiser", "finance", "admin"]),
              help="A role to grant (repeat for several).")
@click.option("--name", default="", help="Their name, for a new supporter.")
@click.option("--mail/--no-mail", "send_mail", default=False,
              help="Also email the sign-in link (default: only print it).")
def users_create_command(email: str, roles: tuple[str, ...], name: str, send_mail: bool) -> None:
    """Create (or find) the supporter with this email, grant the roles, and print a one-time
    sign-in link for them."""
    address = email.strip().lower()
    if "@" not in address or len(address) > 254:
        raise click.ClickException(f"{email!r} is not an email address.")
    supporter = get_or_create_supporter(address, name)
    db.session.flush()
    actor = Actor(id=None, label="cli")
    try:
        granted = [r for r in roles if grant_role(supporter, Role(r), actor=actor)]
    except RoleError as exc:
        raise click.ClickException(exc.message) from None
    links = AccountLinks.from_config(current_app.config)
    # One link, printed and (with --mail) mailed: only the newest sign-in link works.
    token = send_signin_link(supporter, links) if send_mail \
        else links.make(tokens.SIGNIN, supporter)
    jobs.commit()
    held = ", ".join(sorted(roles))
    click.echo(f"{supporter.email}: {held}" + (f" (granted now: {', '.join(granted)})"
                                               if granted else " (already held)"))
    minutes = links.max_ages[tokens.SIGNIN] // 60
    link = external_url("accounts.follow_signin_link", token=token)
    click.echo(f"one-time sign-in link, valid {minutes} minutes:\n  {link}")
    if send_mail:
        click.echo("a sign-in link was also emailed to them")


@users_cli.command("list")
def users_list_command() -> None:
    """Everyone holding a staff role."""
    for person, grants in staff_members():
        click.echo(f"{person.email:<40} {', '.join(g.role.value for g in grants)}")


@users_cli.command("revoke")
@writing_command
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["fundraiser", "finance", "admin"]))
def users_revoke_command(email: str, role: str) -> None:
    """Take a role away."""
    supporter = db.session.scalar(select(Supporter).where(Supporter.email ==
                                                          email.strip().lower()))
    if supporter is None:
        raise click.ClickException(f"no supporter with the address {email}")
    try:
        done = revoke_role(supporter, Role(role), actor=Actor(id=None, label="cli"))
    except RoleError as exc:
        raise click.ClickException(exc.message) from None
    jobs.commit()
    click.echo(f"{supporter.email}: {role} revoked" if done else f"{supporter.email} did not "
               f"have the role {role}")


staff_cli = AppGroup("staff")


@staff_cli.command("rollup")
@writing_command
@click.option("--campaign", "slug", help="Only this campaign (default: every campaign).")
def rollup_command(slug: str | None) -> None:
    """Rebuild the dashboards' snapshots of the ledger (``app.staff.rollup``).

    Pages rebuild a snapshot themselves when it is missing or far behind, which takes seconds
    at a few hundred thousand gifts; run this after a bulk import, and every few minutes from
    cron while campaigns are live, so no page has to.
    """
    zone = org_zone()
    query = select(Campaign).order_by(Campaign.id)
    if slug:
        query = query.where(Campaign.slug == slug)
    ids = list(db.session.scalars(query.with_only_columns(Campaign.id)))
    if slug and not ids:
        raise click.ClickException(f"no campaign {slug!r}")
    for campaign_id in ids:
        started = time.perf_counter()
        campaign = db.session.get(Campaign, campaign_id)
        name = campaign.slug
        rollup.snapshot_for(campaign, zone=zone, now=utcnow(), force=True)
        click.echo(f"{name}: {time.perf_counter() - started:.1f}s")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(staff_cli)
