"""Articles from the newsroom's RSS or Atom feed, stored once each and tagged by category.

The feed is read by feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0; it copes with the malformed
XML real feeds contain), at most ``MAX_FEED_BYTES`` of it. An entry is keyed by its
``<id>``/``<guid>``, and by its link only when it has none: the key is unique in the database, so
ingesting the same feed again, or a feed that repeats an entry, stores nothing twice, while
entries with distinct ids stay distinct stories even when they share a link. Its ``<category>``
terms are matched to our categories by slug or name, case-insensitively; unknown terms are
ignored (and reported).

What reaches a page or an email is checked here, once:

- A story's link becomes the ``href`` of My news and of the daily email (which no CSP protects),
  so only an http(s) address is kept (``web_link``): the link is read as a browser reads an
  ``href`` (control characters and spaces around it dropped, tabs and newlines inside it
  dropped: ``java<TAB>script:`` is ``javascript:``), a relative one is resolved against the
  feed's address, and an entry whose link is anything else (``javascript:``, ``data:``, an
  address of more than 2,000 characters) is refused, logged and counted (``refused``). The
  database holds the same rule as a CHECK.
- Titles, summaries and authors are plain text (tags dropped, a space where a block ends:
  ``<p>everyone</p><h2>GROW</h2>`` is "everyone GROW"), cut on a word boundary with an ellipsis
  beyond ``TITLE_MAX``/``SUMMARY_MAX``/``AUTHOR_MAX`` characters: a 3 MB description must not
  make a 6 MB email for every subscriber.

Two kinds of term are marks, not categories (none is created for them, and readers cannot
follow them): a top-story term marks the newsroom's picks (``is_top``), and an analysis term
(``analysis`` unless the caller passes others: ``NEWS_ANALYSIS_TERMS``) marks a correspondent's
analysis (``is_analysis``), which the daily email gives its own section for the members whose
level has that perk. Terms are compared by their slug ("Analysis", "analysis" and " ANALYSIS "
are the same). A story's marks, like its categories, are those of its first ingest.
"""

from __future__ import annotations

import calendar
import enum
import hashlib
import html
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser
import nh3
from sqlalchemy import select

from app.extensions import db
from app.news.models import Article, Category
from app.news.services import slugify

log = logging.getLogger(__name__)

SAMPLE_FEED = Path(__file__).parent / "sample_feed.xml"
MAX_FEED_BYTES = 10 * 1024 * 1024
# Longest text kept of an entry, in characters: a headline, a standfirst, a byline.
TITLE_MAX = 300
SUMMARY_MAX = 600
AUTHOR_MAX = 200
# Longest link kept (the column's size); a longer one is refused rather than cut.
LINK_MAX = 2000
FETCH_TIMEOUT_SECONDS = 20
# Feed category terms that mark the newsroom's top stories.
TOP_STORY_TERMS = {"top-story", "top-stories", "top"}
# Feed category terms that mark a correspondent's analysis, unless configured otherwise.
ANALYSIS_TERMS = ("analysis",)
USER_AGENT = "newsfund-ingest/1.0 (+https://levantwire.example)"


class FeedError(Exception):
    """The feed could not be fetched or read."""


class Unusable(enum.Enum):
    """What parse_feed makes of an entry it cannot store, and why."""

    INCOMPLETE = "no title or link"  # counted as skipped
    REFUSED = "a link that is no http(s) address"  # logged, and counted as refused


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
    refused: int = 0  # entries whose link is no http(s) address (see web_link)
    unknown_terms: set[str] = field(default_factory=set)
    warning: str | None = None  # feedparser read the feed but found it malformed


def fetch_feed(source: str) -> tuple[bytes, str | None]:
    """The feed's bytes from an http(s) URL or a local file, and its address: the URL it was
    read from after any redirect (None for a file), which relative links are resolved against.
    """
    scheme = urlsplit(source).scheme.lower()
    address = None
    if scheme in ("http", "https"):
        request = urllib.request.Request(source, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data = response.read(MAX_FEED_BYTES + 1)
                address = response.geturl()
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
    return data, address


def parse_feed(data: bytes, *, now: datetime, address: str | None = None,
               ) -> tuple[list[FeedEntry | Unusable], str | None]:
    """The feed's entries and, when the feed is malformed but readable, a warning.

    ``address`` is where the feed was fetched from: relative links are resolved against it, or,
    for a feed read from a file, against the address the feed gives for itself (its ``self``
    link, else its site's). An entry that cannot be stored is an :class:`Unusable`, saying
    why. Raises :class:`FeedError` when nothing could be read.
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
    base = address or _own_address(parsed.feed)
    entries: list[FeedEntry | Unusable] = []
    for raw in parsed.entries:
        given = raw.get("link") or ""
        title = _text(raw.get("title") or "", TITLE_MAX)
        if not given.strip() or not title:
            entries.append(Unusable.INCOMPLETE)
            continue
        link = web_link(given, base)
        guid = (raw.get("id") or "").strip()
        if link is None:
            log.warning("feed entry %r refused: its link %r is no http(s) address",
                        guid[:200], given[:200])
            entries.append(Unusable.REFUSED)
            continue
        entries.append(FeedEntry(
            guid=_key(guid or link),
            link=link,
            title=title,
            summary=_text(raw.get("summary") or "", SUMMARY_MAX),
            author=_text(raw.get("author") or "", AUTHOR_MAX),
            published_at=_when(raw, now),
            terms=[t for tag in raw.get("tags") or ()
                   for t in (tag.get("term"), tag.get("label")) if t],
        ))
    return entries, warning


def ingest_entries(entries: Iterable[FeedEntry | Unusable], *, now: datetime,
                   analysis_terms: Iterable[str] = ANALYSIS_TERMS) -> IngestResult:
    """Store the entries not stored yet; correct the title and summary of those that are.

    An entry is the stored story with its key (``guid``: its id, or its link when it has none);
    a key repeated in the feed is the same story, taken from its first entry. ``analysis_terms``:
    the category terms that mark an analysis. Adds and flushes; the caller commits.
    """
    result = IngestResult()
    analysis = {slugify(term) for term in analysis_terms} - {""}
    entries = list(entries)
    usable = [e for e in entries if isinstance(e, FeedEntry)]
    result.skipped = entries.count(Unusable.INCOMPLETE)
    result.refused = entries.count(Unusable.REFUSED)
    categories = list(db.session.scalars(select(Category)))
    by_term = {c.slug: c for c in categories}
    by_term.update({c.name.casefold(): c for c in categories})

    existing: dict[str, Article] = {}
    for chunk in _chunks(sorted({e.guid for e in usable}), 500):
        for article in db.session.scalars(select(Article).where(Article.guid.in_(chunk))):
            existing[article.guid] = article
    seen: set[str] = set()

    for entry in usable:
        if entry.guid in seen:  # repeated in the feed: its first entry has been taken
            result.unchanged += 1
            continue
        seen.add(entry.guid)
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
        article = existing.get(entry.guid)
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
                          published_at=entry.published_at, ingested_at=now,
                          categories=list(matched.values()))
        db.session.add(article)
        result.new += 1
    db.session.flush()
    return result


def ingest_feed(source: str, *, now: datetime,
                analysis_terms: Iterable[str] = ANALYSIS_TERMS) -> IngestResult:
    """Fetch, parse and store a feed."""
    data, address = fetch_feed(source)
    entries, warning = parse_feed(data, now=now, address=address)
    result = ingest_entries(entries, now=now, analysis_terms=analysis_terms)
    result.warning = warning
    return result


# What a browser drops from an href before reading it (the WHATWG URL standard): C0 controls
# and spaces around it, tabs and newlines anywhere in it.
_AROUND = "".join(map(chr, range(0x21)))
_INSIDE = re.compile(r"[\t\n\r]")
# Left inside a link: percent-encoded, as a browser sends them.
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


def web_link(value: str, base: str | None) -> str | None:
    """``value`` as an absolute http(s) address, resolved against ``base`` when relative; None
    when it is anything else (``javascript:``, ``data:``, ``mailto:``, a relative link with no
    http(s) base, no host, longer than ``LINK_MAX``).

    It is read as a browser reads an ``href``, so that what is checked is what a click opens:
    spaces and control characters around it and tabs and newlines inside it dropped, then its
    scheme compared case-insensitively. (Character references were the feed's XML to decode;
    one left in, ``java&#9;script:``, is text and the browser gets it as text: a path.) The
    result is what is stored: scheme in lower case, any control character or space left
    percent-encoded.
    """
    link = _INSIDE.sub("", value.strip(_AROUND))
    link = _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", link)
    try:
        if base is not None and urlsplit(base).scheme.lower() in ("http", "https"):
            link = urljoin(base, link)
        parts = urlsplit(link)
    except ValueError:  # an unbalanced [ in the host, say
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    link = urlunsplit(parts)
    return link if len(link) <= LINK_MAX else None


def _own_address(feed) -> str | None:
    """The address a feed gives for itself (its ``self`` link), else its site's: the base of a
    feed read from a file."""
    candidates = [link.get("href") for link in feed.get("links") or ()
                  if link.get("rel") == "self"] + [feed.get("link")]
    return next((c for c in candidates
                 if c and urlsplit(c).scheme.lower() in ("http", "https")), None)


# Where a block ends or a line breaks: the text on either side are separate words.
_BLOCK = re.compile(
    r"<(/?)(address|article|aside|blockquote|br|caption|dd|details|div|dl|dt|figcaption|"
    r"figure|footer|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|summary|table|tbody|td|"
    r"tfoot|th|thead|tr|ul)(?=[\s/>])", re.IGNORECASE)


def _text(value: str, limit: int) -> str:
    """Plain text from a feed's (sanitized) HTML: tags dropped (with a space where a block
    ends), entities decoded, one line, at most ``limit`` characters (``_shorten``)."""
    spaced = _BLOCK.sub(r" <\1\2", value)
    return _shorten(" ".join(html.unescape(nh3.clean(spaced, tags=set())).split()), limit)


def _shorten(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else cut at the last word boundary that
    leaves room for an ellipsis (mid-word only when a single word fills half of it)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")  # the words before it fit with the ellipsis
    cut = cut[:space] if space >= limit // 2 else cut[:limit - 1]
    return cut.rstrip(" ,;:.-\u2013\u2014") + "\u2026"


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
