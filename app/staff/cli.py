"""``flask users``: staff accounts from the command line (the first admin has no one to grant
them a role in the browser)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import jobs
from app.audit import Actor
from app.extensions import db
from app.urls import external_url

users_cli = AppGroup("users", help="Staff accounts and their roles.")


@users_cli.command("create")
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
    from app.accounts import tokens
    from app.accounts.services import get_or_create_supporter, send_signin_link
    from app.accounts.tokens import AccountLinks
    from app.staff.models import Role
    from app.staff.roles import RoleError, grant_role

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
    from app.staff.roles import staff_members

    for person, grants in staff_members():
        click.echo(f"{person.email:<40} {', '.join(g.role.value for g in grants)}")


@users_cli.command("revoke")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["fundraiser", "finance", "admin"]))
def users_revoke_command(email: str, role: str) -> None:
    """Take a role away."""
    from app.accounts.models import Supporter
    from app.staff.models import Role
    from app.staff.roles import RoleError, revoke_role

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
