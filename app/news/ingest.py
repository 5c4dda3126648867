"""Articles from the newsroom's RSS or Atom feed, stored once each and tagged by category.

The feed is read by feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0; it copes with the malformed
XML real feeds contain). An entry is keyed by its ``<id>``/``<guid>``, else its link, and both
are unique in the database, so ingesting the same feed again, or a feed that repeats an entry,
stores nothing twice. Its ``<category>`` terms are matched to our categories by slug or name,
case-insensitively; unknown terms are ignored (and reported).

Two kinds of term are marks, not categories (none is created for them, and readers cannot
follow them): a top-story term marks the newsroom's picks (``is_top``), and an analysis term
(``analysis`` unless the caller passes others: ``NEWS_ANALYSIS_TERMS``) marks a correspondent's
analysis (``is_analysis``), which the daily email gives its own section for the members whose
level has that perk. Terms are compared by their slug ("Analysis", "analysis" and " ANALYSIS "
are the same). A story's marks, like its categories, are those of its first ingest.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import nh3
from sqlalchemy import or_, select

from app.extensions import db
from app.news.models import Article, Category
from app.news.services import slugify

SAMPLE_FEED = Path(__file__).parent / "sample_feed.xml"
MAX_FEED_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 20
# Feed category terms that mark the newsroom's top stories.
TOP_STORY_TERMS = {"top-story", "top-stories", "top"}
# Feed category terms that mark a correspondent's analysis, unless configured otherwise.
ANALYSIS_TERMS = ("analysis",)
USER_AGENT = "newsfund-ingest/1.0 (+https://levantwire.example)"


class FeedError(Exception):
    """The feed could not be fetched or read."""


@dataclass
class FeedEntry:
    """One entry, already cleaned: plain text, UTC time, category terms."""

    guid: str
    link: str
    title: str
    summary: str
    author: str
    published_at: datetime
    terms: list[str]


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # entries without a link or a title
    unknown_terms: set[str] = field(default_factory=set)
    warning: str | None = None  # feedparser read the feed but found it malformed


def fetch_feed(source: str) -> bytes:
    """The feed's bytes from an http(s) URL or a local file."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        request = urllib.request.Request(source, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data = response.read(MAX_FEED_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection open
            raise FeedError(f"could not fetch {source}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise FeedError(f"could not fetch {source}: {exc}") from None
    elif scheme in ("", "file") or len(scheme) == 1:  # a path (or a Windows drive letter)
        path = Path(urlsplit(source).path if scheme == "file" else source)
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_FEED_BYTES + 1)
        except OSError as exc:
            raise FeedError(f"could not read {path}: {exc.strerror or exc}") from None
    else:
        raise FeedError(f"not a feed URL or file: {source} (use http://, https:// or a path)")
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{source} is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
    return data


def parse_feed(data: bytes, *, now: datetime) -> tuple[list[FeedEntry], str | None]:
    """The feed's entries and, when the feed is malformed but readable, a warning.

    Raises :class:`FeedError` when nothing could be read.
    """
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    warning = None
    if parsed.get("bozo"):
        reason = str(parsed.get("bozo_exception") or "malformed feed")
        if not parsed.entries:
            raise FeedError(f"not a readable RSS or Atom feed: {reason}")
        warning = reason
    elif not parsed.get("version") and not parsed.entries:
        raise FeedError("not an RSS or Atom feed")
    entries = []
    for raw in parsed.entries:
        link = (raw.get("link") or "").strip()
        title = _text(raw.get("title") or "")
        guid = (raw.get("id") or "").strip() or link
        if not link or not title:
            entries.append(None)
            continue
        entries.append(FeedEntry(
            guid=_key(guid),
            link=link[:2000],
            title=title[:500],
            summary=_text(raw.get("summary") or ""),
            author=_text(raw.get("author") or "")[:200],
            published_at=_when(raw, now),
            terms=[t for tag in raw.get("tags") or ()
                   for t in (tag.get("term"), tag.get("label")) if t],
        ))
    return entries, warning


def ingest_entries(entries: Iterable[FeedEntry | None], *, now: datetime,
                   shift: timedelta = timedelta(0),
                   analysis_terms: Iterable[str] = ANALYSIS_TERMS) -> IngestResult:
    """Store the entries not stored yet; correct the title and summary of those that are.

    ``shift`` moves every publication time by the same amount (the demo uses it to make the
    shipped feed's fixed dates recent). ``analysis_terms``: the category terms that mark an
    analysis. Adds and flushes; the caller commits.
    """
    result = IngestResult()
    analysis = {slugify(term) for term in analysis_terms} - {""}
    entries = list(entries)
    usable = [e for e in entries if e is not None]
    result.skipped = len(entries) - len(usable)
    categories = list(db.session.scalars(select(Category)))
    by_term = {c.slug: c for c in categories}
    by_term.update({c.name.casefold(): c for c in categories})

    existing: dict[str, Article] = {}
    guids = {e.guid for e in usable}
    links = {e.link for e in usable}
    for chunk in _chunks(sorted(guids | links), 500):
        for article in db.session.scalars(
                select(Article).where(or_(Article.guid.in_(chunk), Article.link.in_(chunk)))):
            existing[article.guid] = existing[article.link] = article

    for entry in usable:
        matched: dict[int, Category] = {}
        is_top = is_analysis = False
        for term in entry.terms:
            slug = slugify(term)
            if slug in TOP_STORY_TERMS:
                is_top = True
                continue
            if slug in analysis:
                is_analysis = True
                continue
            category = by_term.get(slug) or by_term.get(term.strip().casefold())
            if category is None:
                result.unknown_terms.add(term.strip())
            else:
                matched[category.id] = category
        article = existing.get(entry.guid) or existing.get(entry.link)
        if article is not None:
            if (article.title, article.summary) != (entry.title, entry.summary):
                article.title, article.summary = entry.title, entry.summary
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        article = Article(guid=entry.guid, link=entry.link, title=entry.title,
                          summary=entry.summary, author=entry.author, is_top=is_top,
                          is_analysis=is_analysis,
                          published_at=entry.published_at + shift, ingested_at=now,
                          categories=list(matched.values()))
        db.session.add(article)
        existing[entry.guid] = existing[entry.link] = article
        result.new += 1
    db.session.flush()
    return result


def ingest_feed(source: str, *, now: datetime, rebase_to: datetime | None = None,
                analysis_terms: Iterable[str] = ANALYSIS_TERMS) -> IngestResult:
    """Fetch, parse and store a feed. With ``rebase_to``, the entries' times are moved so that
    the newest is published at that time (demo data from a feed with fixed dates)."""
    entries, warning = parse_feed(fetch_feed(source), now=now)
    shift = timedelta(0)
    dated = [e.published_at for e in entries if e is not None]
    if rebase_to is not None and dated:
        shift = rebase_to - max(dated)
    result = ingest_entries(entries, now=now, shift=shift, analysis_terms=analysis_terms)
    result.warning = warning
    return result


def _text(value: str) -> str:
    """Plain text from a feed's (sanitized) HTML: tags dropped, entities decoded, one line."""
    return " ".join(html.unescape(nh3.clean(value, tags=set())).split())


def _key(guid: str) -> str:
    # An over-long id is kept unique by its digest rather than cut (two cuts could collide).
    if len(guid) <= 500:
        return guid
    return "sha256:" + hashlib.sha256(guid.encode()).hexdigest()


def _when(raw, now: datetime) -> datetime:
    """The entry's publication time in UTC (feedparser normalises to a UTC struct_time);
    its update time when it has none; ``now`` when it has neither."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return now


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
