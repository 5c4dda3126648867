"""The campaign page as most readers get it: rendered once per process for each state of the
campaign and its ledger, checked against the database at most once a second, and finished per
request with the visitor's own values (CSRF token, submission key, ``utm_*`` parameters).

Rendering the page (the donation form's widgets, the letter, the progress figures) costs
milliseconds; everything in it but those values is the same for every anonymous reader until
the campaign, its ledger or the clock moves on. So a page is kept, in this process only, with
what it was rendered from, and served again only while one cheap statement
(``campaign_page_state``: the campaign's row, its suggested amounts, its ``LedgerVersion``)
reads exactly the same. A gift recorded by any process changes the version.

That statement is not run on every request: a page checked less than
``CAMPAIGN_PAGE_RECHECK_SECONDS`` ago (1 s by default; 0 checks every time) is served as it is,
so under a rush of readers each process asks the database about once a second rather than once
per reader. A reader may see a total up to that long old, no more; the clock's edges (start,
end, matching, days left) are still exact. A donor is not among them: the thank-you page marks
their session (:func:`mark_donor`), and a marked visitor's page is always checked first, so a
donor back from the thank-you page sees their gift counted.

Nothing here is state another process needs: a worker that never saw the page renders it.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import abort, current_app, request, session
from flask_wtf.csrf import generate_csrf
from markupsafe import escape

from app.campaigns.models import Campaign
from app.campaigns.services import (
    LedgerVersion,
    PageState,
    Progress,
    campaign_page_state,
    campaign_progress_versioned,
    get_campaign,
)
from app.giving.forms import FORM_PARAMETERS, donation_form
from app.giving.services import UTM_FIELDS
from app.giving.started import STARTED_KEY
from app.lru import LRU

#: The form fields whose values differ per visitor; everything else on the page is shared.
VISITOR_FIELDS = ("submission_key", *UTM_FIELDS)
CSRF_SLOT = "csrf_token"
# Stand-ins rendered in place of the visitor's values, then cut out: hex, so escaping leaves
# them alone, and random per process, so no campaign text can contain one by chance.
_MARK = f"slot{secrets.token_hex(8)}"
_SLOT = re.compile(rf"{_MARK}-(\w+)-")
CACHE_SIZE = 64
#: In the session of a visitor who has given: their campaign pages are checked every time.
DONOR_KEY = "gave"
# What Flask-Login keeps in the session of a visitor who is not signed in (session protection:
# an identifier hash and "not fresh"); signed in, it adds "_user_id".
ANONYMOUS_SESSION_KEYS = frozenset({"_fresh", "_id"})


@dataclass(frozen=True)
class CachedPage:
    """A rendered page cut at the visitor's values, and what it was rendered from."""

    content: tuple
    version: LedgerVersion
    progress: Progress
    # The first instant the page could read differently by the clock alone: the start, the
    # end, the end of matching, or the next change of "days left".
    valid_until: datetime
    chunks: tuple[str, ...]  # the HTML around the slots: len(slots) + 1 pieces
    slots: tuple[str, ...]  # which visitor value goes between two chunks
    checked_at: float = 0.0  # time.monotonic() when the database last said it stands

    def recently_checked(self, now: datetime, within: float) -> bool:
        return time.monotonic() - self.checked_at < within and now < self.valid_until

    def serves(self, state: PageState, now: datetime) -> bool:
        return (self.version == state.version and self.content == state.content
                and now < self.valid_until)

    def fill(self, values: dict[str, str]) -> str:
        parts = [self.chunks[0]]
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            parts.append(escape(values[slot]))
            parts.append(chunk)
        return "".join(parts)


def page_cache() -> LRU:
    cache = current_app.extensions.get("campaign_pages")
    if cache is None:
        cache = current_app.extensions.setdefault("campaign_pages", LRU(CACHE_SIZE))
    return cache


def shared_page_applies() -> bool:
    """Whether this visitor gets the shared page: an anonymous reader with nothing waiting for
    them. Their session may hold a CSRF token (theirs is filled in), Flask-Login's notes on
    an anonymous session and the gifts it started (used only by a link's ``gift`` parameter);
    anything else (signed in, a flashed message, a remember-me cookie, whatever a future
    feature keeps there) gets a page rendered for them alone, so nothing personal can land in
    the shared copy. So does a link that chooses on the form (``FORM_PARAMETERS``)."""
    csrf_key = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    return (session.keys() <= {csrf_key, DONOR_KEY, STARTED_KEY, *ANONYMOUS_SESSION_KEYS}
            and remember not in request.cookies
            and not any(name in request.args for name in FORM_PARAMETERS))


def mark_donor() -> None:
    """From now on this visitor's campaign pages are checked against the ledger every time."""
    if not session.get(DONOR_KEY):
        session[DONOR_KEY] = True


def campaign_page(slug: str, now: datetime, render) -> str | None:
    """The page for an anonymous visitor, or None when the campaign is not live (those pages
    are rendered in full each time). ``render(campaign, form, now, progress)`` renders the
    template. Aborts with 404 for an unknown or unpublished campaign.
    """
    # Links in the page are relative to where the app is mounted.
    key = (slug, request.script_root)
    cache = page_cache()
    page = cache.get(key)
    within = current_app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"]
    if (page is not None and within and DONOR_KEY not in session
            and page.recently_checked(now, within)):
        return page.fill(_visitor_values(page.slots))
    state = campaign_page_state(slug) or abort(404)
    if page is None or not page.serves(state, now):
        page = _refresh(slug, state, now, page, render)
        if page is None:
            return None
    cache.put(key, replace(page, checked_at=time.monotonic()))
    return page.fill(_visitor_values(page.slots))


def _refresh(slug: str, state: PageState, now: datetime, page: CachedPage | None,
             render) -> CachedPage | None:
    campaign = get_campaign(slug) or abort(404)
    if not campaign.is_live(now):
        return None
    progress, version = campaign_progress_versioned(campaign, now)
    if (page is not None and page.content == state.content and page.progress == progress
            and now < page.valid_until):
        # Only the version moved (on PostgreSQL, any commit anywhere moves the snapshot) and
        # the figures read again are the same: the HTML stands, under the new version.
        return replace(page, version=version)
    return _render_page(campaign, state, now, progress, version, render)


def _render_page(campaign: Campaign, state: PageState, now: datetime, progress: Progress,
                 version: LedgerVersion, render) -> CachedPage:
    form = donation_form(campaign)
    for name in VISITOR_FIELDS:
        getattr(form, name).data = f"{_MARK}-{name}-"
    if form.meta.csrf:
        getattr(form, form.meta.csrf_field_name).current_token = f"{_MARK}-{CSRF_SLOT}-"
    pieces = _SLOT.split(render(campaign, form, now, progress))
    return CachedPage(
        content=state.content, version=version, progress=progress,
        valid_until=_valid_until(campaign, progress, now),
        chunks=tuple(pieces[0::2]), slots=tuple(pieces[1::2]),
    )


def _valid_until(campaign: Campaign, progress: Progress, now: datetime) -> datetime:
    edges = [campaign.starts_at, campaign.ends_at, campaign.match_ends_at]
    if progress.days_left > 1:
        # days_left = ceil(seconds left / 1 day) drops by one each time the seconds left reach
        # a whole number of days.
        edges.append(campaign.ends_at - timedelta(days=progress.days_left - 1))
    return min(edge for edge in edges if edge is not None and edge > now)


def _visitor_values(slots: tuple[str, ...]) -> dict[str, str]:
    """The same values ``donation_form`` would have put in a fresh form for this request."""
    values = {"submission_key": uuid.uuid4().hex}
    for name in UTM_FIELDS:
        values[name] = request.args.get(name, "")[:100]
    if CSRF_SLOT in slots:
        # The form's own token: signed, and tied to this visitor's session like any other.
        values[CSRF_SLOT] = generate_csrf()
    return values
