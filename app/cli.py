"""The command line: thin wrappers over the services (``flask --app app <command>``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from app import jobs
from app.db import utcnow
from app.extensions import db


@click.command("seed-demo")
@click.option("--gifts", type=click.IntRange(min=0), default=0,
              help="Also add this many paid gifts spread over the live campaigns (benchmarks).")
def seed_demo_command(gifts: int) -> None:
    """Load the demo campaigns and their history (idempotent)."""
    from app.campaigns.models import Campaign
    from app.demo import generate_gifts, seed_demo

    now = utcnow()
    created = seed_demo(now)
    jobs.commit()
    click.echo(f"demo campaigns created: {', '.join(created) or 'none (already there)'}")
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


sandbox_cli = AppGroup("sandbox", help="The sandbox payment provider.")


@sandbox_cli.command("renew")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Pretend it is this UTC time (to renew plans that would be due then).")
def renew_command(now_text: str | None) -> None:
    """Charge every sandbox plan that is due, as its monthly or yearly renewal."""
    from app.giving.services import due_plans
    from app.payments.providers import provider_named
    from app.payments.sandbox_views import deliver

    provider = provider_named("sandbox")
    if provider is None:
        raise click.ClickException("The sandbox is not the payment provider here.")
    now = utcnow()
    if now_text:
        now = datetime.fromisoformat(now_text)
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    renewed = 0
    # A plan several periods behind catches up one period per pass.
    while plans := due_plans("sandbox", now):
        for plan in plans:
            period = plan.periods_paid
            event = provider.invoice_paid_event(
                subscription_id=plan.provider_subscription_id,
                customer=plan.provider_customer_id, period=plan.periods_paid + 1,
                amount=plan.total, currency=plan.currency,
                metadata={"campaign": plan.campaign.slug}, now=time.time())
            deliver(provider, event)
            if db.session.get(type(plan), plan.id).periods_paid == period:
                raise click.ClickException(
                    f"plan {plan.id}: the renewal was not recorded; see the provider event log")
            renewed += 1
    click.echo(f"renewed {renewed} plan period(s)")


mail_cli = AppGroup("mail", help="Outgoing mail.")


@mail_cli.command("send-pending")
def send_pending_command() -> None:
    """Deliver every queued message that has not gone out yet (after an SMTP outage, say)."""
    from app.mail import deliver_pending

    sent, failed = deliver_pending()
    click.echo(f"sent {sent}, failed {failed}")
    if failed:
        raise SystemExit(1)


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(mail_cli)
