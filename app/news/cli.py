"""``flask news``: feed ingest, the categories readers follow, and the daily email."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app import jobs
from app.cli import parse_now
from app.db import utcnow, writing_command
from app.news.digest import DigestAborted, send_configured_digest
from app.news.ingest import FeedError, ingest_feed
from app.news.models import CategoryKind
from app.news.services import NewsError, add_category, list_categories, remove_category

news_cli = AppGroup("news", help="News: feed ingest, categories, the daily email.")


@news_cli.command("ingest")
@writing_command
@click.argument("source", metavar="URL-OR-FILE")
def news_ingest_command(source: str) -> None:
    """Store the new stories of an RSS or Atom feed (a URL or a file), tagged by category."""
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
@writing_command
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
    last = [0]

    def progress(report) -> None:
        done = report.sent + report.failed
        if done - last[0] >= progress_every:
            last[0] = done
            click.echo(f"  {report.sent:,} sent, {report.failed:,} failed "
                       f"({report.rate:,.0f} emails/s)")

    try:
        report = send_configured_digest(
            now=parse_now(now_text), batch_size=batch,
            reclaim_after=timedelta(minutes=reclaim_after), progress=progress)
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
    for category in list_categories():
        click.echo(f"{category.kind.value:<7} {category.slug:<40} {category.name}")


@categories_cli.command("add")
@writing_command
@click.argument("name")
@click.option("--kind", type=click.Choice(["region", "topic"]), required=True)
@click.option("--slug", help="How feeds name it (default: from the name).")
def categories_add_command(name: str, kind: str, slug: str | None) -> None:
    """Add a category, or rename the one with this slug."""
    try:
        category, created = add_category(name, CategoryKind(kind), slug=slug)
    except NewsError as exc:
        raise click.ClickException(exc.message) from None
    jobs.commit()
    click.echo(f"{'added' if created else 'updated'} {category.kind.value} {category.slug}: "
               f"{category.name}")


@categories_cli.command("remove")
@writing_command
@click.argument("slug")
def categories_remove_command(slug: str) -> None:
    """Remove a category with its follows and story tags (the stories stay)."""
    if not remove_category(slug):
        raise click.ClickException(f"no category {slug!r}")
    jobs.commit()
    click.echo(f"removed {slug}")


def init_app(app: Flask) -> None:
    app.cli.add_command(news_cli)
