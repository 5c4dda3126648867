"""Jinja filters: money, dates in the organisation's zone, and safe Markdown; strict templates
under tests and in development."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import nh3
from babel.dates import (
    format_date,
    format_datetime,
    format_time,
    get_datetime_format,
    get_timezone_name,
)
from flask import Flask, current_app
from jinja2 import StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup

from app.mail import contact_address
from app.money import format_money

# Raw HTML in the source is escaped, not passed through; nh3 then strips anything unsafe that a
# Markdown link or image could still smuggle in (javascript: URLs and the like).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True})


@lru_cache(maxsize=256)
def render_markdown(source: str) -> Markup:
    return Markup(nh3.clean(_markdown.render(source or ""), link_rel="noopener nofollow"))


def org_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def _money(minor: int, currency: str, whole: bool = False) -> str:
    return format_money(minor, currency, current_app.config["ORG_LOCALE"], whole=whole)


def _date(value: datetime | date, fmt: str = "long") -> str:
    """A moment's date in the organisation's zone; a calendar day (a ``date``) as it is."""
    if isinstance(value, datetime):
        value = value.astimezone(org_zone()).date()  # what Babel formats of a datetime
    return _formatted_day(value, fmt, current_app.config["ORG_LOCALE"])


@lru_cache(maxsize=1024)
def _formatted_day(day: date, fmt: str, locale: str) -> str:
    """Babel's date, remembered: the receipts of a batch of gifts bear the same day, and
    Babel works out the locale's pattern anew for each (3% of a webhook worker's CPU)."""
    return format_date(day, fmt, locale=locale)


def _datetime(value: datetime, fmt: str = "medium") -> str:
    return format_datetime(value, fmt, tzinfo=org_zone(), locale=current_app.config["ORG_LOCALE"])


def format_moment(value: datetime, *, zone: ZoneInfo, locale: str) -> str:
    """A moment to the minute in ``zone``, and the zone's name: "Nov 25, 2026, 9:03 AM EST" in
    en_US. Babel's medium date and short time (no seconds) joined by the locale's own pattern.
    Staff pages show times this way (the ``moment`` filter), and the dashboard's live refresh
    gets the same text from the server, so the browser's own zone never shows through."""
    local = value.astimezone(zone)
    when = (get_datetime_format("medium", locale=locale).replace("'", "")
            .replace("{0}", format_time(local, "short", tzinfo=zone, locale=locale))
            .replace("{1}", format_date(local, "medium", locale=locale)))
    return f"{when} {get_timezone_name(local, 'short', locale=locale)}"


def _moment(value: datetime) -> str:
    return format_moment(value, zone=org_zone(), locale=current_app.config["ORG_LOCALE"])


def register_filters(app: Flask) -> None:
    if app.testing or app.debug:
        # Templates fail loudly under tests and in development (``flask run --debug``): a
        # misspelt or missing name, or an attribute of the wrong object (a form's csrf_token on
        # a macro), raises instead of rendering as nothing. Production keeps Jinja's forgiving
        # default: a slip there shows a gap on the page, never a 500 on a donation page.
        app.jinja_env.undefined = StrictUndefined
    app.add_template_filter(_money, "money")
    app.add_template_filter(_date, "date")
    app.add_template_filter(_datetime, "datetime")
    app.add_template_filter(_moment, "moment")
    app.add_template_filter(render_markdown, "markdown")

    @app.context_processor
    def organisation():
        return {"org_name": app.config["ORG_NAME"], "org_contact": contact_address(app.config)}
