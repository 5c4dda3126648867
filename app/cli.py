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
    from app.news.demo import seed_news

    categories, stories = seed_news(now)
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


news_cli = AppGroup("news", help="News: feed ingest, categories, the daily email.")


def _utc(text: str | None) -> datetime:
    if not text:
        return utcnow()
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@news_cli.command("ingest")
@click.argument("source", metavar="URL-OR-FILE")
def news_ingest_command(source: str) -> None:
    """Store the new stories of an RSS or Atom feed (a URL or a file), tagged by category."""
    from app.news.ingest import FeedError, ingest_feed

    try:
        result = ingest_feed(source, now=utcnow())
    except FeedError as exc:
        raise click.ClickException(str(exc)) from None
    jobs.commit()
    if result.warning:
        click.echo(f"warning: the feed is malformed but was read: {result.warning}", err=True)
    click.echo(f"{result.new} new, {result.updated} updated, {result.unchanged} already there, "
               f"{result.skipped} skipped (no title or link)")
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

    url = _public_url_builder()
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


def _public_url_builder():
    """Links for mail sent from the command line, on PUBLIC_URL (there is no request)."""
    from urllib.parse import urlsplit

    parts = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/",
                                       url_scheme=parts.scheme or "https")
    return lambda endpoint, **values: adapter.build(endpoint, values, force_external=True)


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


def register_commands(app: Flask) -> None:
    from app.staff.cli import users_cli

    app.cli.add_command(seed_demo_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(news_cli)
