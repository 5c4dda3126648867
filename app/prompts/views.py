"""The prompts on the newsroom's article pages: the live prompts' rules and the decision
embed.js asks for, each prompt's own box, and its counters. The contract with
static/js/embed.js (``data-newsfund="prompt"``):

``GET /embed/prompts/live`` (JSON; CORS for EMBED_ORIGINS; cacheable by anyone, an ``ETag``,
kept ahead of Flask by ``app.edge``): the live prompts and their rules, the same for every
reader, ``{"prompts": [{"id": 3, "placement": "inline", "segment": "everyone", "priority":
100, "variants": ["a", "b"], "min_views": null, "category_id": null, "start_at_view": 1,
"every_nth_view": 1, "max_times": 3, "reset": "daily", "height": 260}]}``. embed.js decides in
the reader's browser with the facts it keeps (below), as :func:`app.prompts.decide.decide` does
here (tests/browser/test_decide_in_browser.py holds the two to the same answers), and frames
``/embed/prompts/<id>/<variant>?page=<article>&track=1``. So an article view costs the server
one answer shared by every reader, not one of its own.

``GET /embed/prompts/decision`` (JSON; CORS for EMBED_ORIGINS; ``Cache-Control: private``, an
``ETag``): the same decision made here, for the readers the server knows more of than their
browser does (a follow-box reader token: a signed-in reader's status and follows) and for
browsers without Web Crypto (a site not on https). Parameters, all optional but ``page``, all
kept by embed.js in the article site's own storage:

- ``page``: the article's address (one of EMBED_ORIGINS', as for every box);
- ``views``: article views in this browser, this one included;
- ``seen``: ``<id>.<period>.<times>`` per prompt shown before, comma-separated (the
  ``period`` of the answer when it was shown; embed.js adds one to ``times``, or starts again
  at 1 when the period differs);
- ``dismissed``: ids of prompts the reader closed, comma-separated;
- ``gave_until``: Unix seconds until which "I already gave" hides every prompt;
- ``rid``: a random first-party id (at most 64 characters) for the A/B split;
- ``email``: ``1`` when the article's address has ``utm_medium=email``;
- ``reader``: the follow box's reader token (a signed-in reader: their status and follows);
- ``status``: the status token from ``#newsfund-status=`` (below).

A browser sending ``Sec-GPC: 1`` or ``DNT: 1`` gets ``"track": false``: no id is used (variant
A), and embed.js keeps no count and no id (dismissals and "I already gave" are the reader's own
choices and are kept); the boxes then count nothing either.

Answer: ``{"track": true, "prompts": [{"id": 3, "placement": "inline" | "overlay" |
"bottom_bar", "variant": "a", "period": "2026-12-03", "height": 260, "url":
"<PUBLIC_URL>/embed/prompts/3/a?page=...&track=1"}]}``: at most one per placement. embed.js
frames ``url`` in the ``data-newsfund="prompt"`` box (inline) or in a fixed frame of its own
(overlay, bottom bar), and counts it as seen.

The box (``/embed/prompts/<id>/<variant>``) posts, to the article's origin only: ``{newsfund:
"height", height}`` (static/js/embed-frame.js), ``{newsfund: "prompt-dismiss", id}`` when
closed (embed.js adds the id to ``dismissed`` and removes the frame), ``{newsfund:
"prompt-gave", id, days}`` for "I already gave" (``gave_until`` = now + days; every prompt
frame removed). Its give link opens the campaign page at the top level through
``/embed/prompts/<id>/<variant>/give``, which counts the click; the gift keeps
``utm_content=prompt-<id>-<variant>`` for the results.

The status token: the thank-you page (a gift) and the daily email's confirmation page set a
first-party cookie on our site holding it (signed; a donor status and whether the reader
subscribes, nothing else). The thank-you page of a gift that came from an article's box links
back to the article through ``/embed/prompts/status?page=<article>``, a top-level visit, which
returns to the article with ``#newsfund-status=<token>`` (from the cookie, or a signed-in
reader's account); embed.js keeps it in the article site's storage, takes it out of the address,
and reads it when it decides in the browser (its date and its two facts, the signature left
unchecked: a forged token only changes what its own reader is shown) or sends it as
``status`` with a decision it asks for. (embed.js asks without cookies, so the cookie itself
never comes with it.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse_many

from app import edge, jobs
from app.db import utcnow
from app.embeds.services import UTM_MAX, placement, reader_for
from app.embeds.views import (
    KEEP_EDITED,
    cacheable,
    embed_headers,
    embed_origins,
    live_seconds,
    public_origin,
)
from app.embeds.views import signer as embed_signer
from app.extensions import csrf, db, limiter
from app.prompts.decide import decide
from app.prompts.models import Placement, Prompt
from app.prompts.services import (
    Known,
    attribution,
    count_event,
    known_supporter,
    live_candidates,
    reader_facts,
)
from app.prompts.status_views import STATUS_COOKIE, status_signer
from app.urls import external_url

bp = Blueprint("prompts", __name__)

#: The height embed.js reserves for a box before it says its own.
HEIGHTS = {Placement.INLINE: 260, Placement.OVERLAY: 320, Placement.BOTTOM_BAR: 120}
NOT_OURS = "Prompts are shown only on the newsroom's own pages."
#: The live prompts' rules: as long as the decision's answer may be kept, and as the campaign
#: box's live figures after that (a prompt switched off shows within about a minute).
LIVE_PROMPTS = "public, max-age=30, stale-while-revalidate=30"
#: What a box posts itself.
BOX_EVENTS = ("impressions", "dismissals")
#: The boxes whose gifts name their article (``utm_medium=embed``): where its host and path are.
ARTICLE_UTM = {"embed-prompt": "utm_term", "embed-campaign": "utm_content"}


def tracking_allowed() -> bool:
    """False when the browser asks not to be tracked (Global Privacy Control, Do Not Track)."""
    return request.headers.get("Sec-GPC") != "1" and request.headers.get("DNT") != "1"


def _place():
    place = placement(request.args.get("page"), embed_origins())
    if place is None:
        abort(400, description=NOT_OURS)
    return place


def _known(now) -> Known | None:
    """Donor and subscriber status: a signed-in reader's (a request with our cookies), the
    follow box's reader token's, or the status token's (no id in it)."""
    supporter = current_user if current_user.is_authenticated else None
    if supporter is None:
        supporter = reader_for(request.args.get("reader"), embed_signer())
    if supporter is not None:
        return known_supporter(supporter, now)
    token = request.args.get("status")
    return status_signer().read(token) if token else None


def article_link(utm: dict[str, str | None]) -> str | None:
    """For a gift made through an article's box: the way back to that article, handing it the
    status token (``status``), or None. The gift keeps the article's host and path; its scheme
    is that of the EMBED_ORIGINS site with that host."""
    where = ARTICLE_UTM.get(utm.get("utm_source") or "")
    if utm.get("utm_medium") != "embed" or where is None or not utm.get(where):
        return None
    host, _, path = utm[where].partition("/")
    for origin in embed_origins():
        if urlsplit(origin).netloc == host:
            return external_url("prompts.status", page=f"{origin}/{path}")
    return None


@bp.after_request
def prompt_headers(response):
    """The boxes may be framed by EMBED_ORIGINS; the JSON is read by them (CORS), as the
    embeds' own answers are; what a reader is shown depends on their Sec-GPC and DNT too."""
    embed_headers(response)
    response.vary.update(("Sec-GPC", "DNT"))
    return response


def candidates(now) -> tuple:
    """The live prompts as the decision reads them, kept by each process for
    CAMPAIGN_PAGE_RECHECK_SECONDS (as the campaign boxes are): a prompt switched on or off,
    or starting or ending, shows in the decisions within that."""
    within = live_seconds()
    kept = current_app.extensions.get("prompt_candidates")
    clock = time.monotonic()
    if within and kept is not None and clock < kept[0]:
        return kept[1]
    found = tuple(live_candidates(now))
    if within:
        current_app.extensions["prompt_candidates"] = (clock + within, found)
    return found


@bp.get("/embed/prompts/live")
@limiter.exempt
def live():
    """The live prompts and their rules, the same for every reader: embed.js decides with
    them in the reader's browser (the module's docstring)."""
    return cacheable({"prompts": [{**candidate.rules(), "height": HEIGHTS[candidate.placement]}
                                  for candidate in candidates(utcnow())]},
                     LIVE_PROMPTS, live_seconds())


@bp.get("/embed/prompts/decision")
@limiter.exempt
def decision():
    """The decision made here (the module's docstring: for a reader token, or a browser
    without Web Crypto)."""
    now = utcnow()
    track = tracking_allowed()
    answer = decision_answer(request.args, track=track, known=_known(now), now=now)
    if answer is None:
        abort(400, description=NOT_OURS)
    response = jsonify(answer)
    if current_user.is_authenticated:  # a signed-in reader's answer is theirs alone
        response.headers["Cache-Control"] = "private, no-store"
        return response
    # The same facts give the same answer for a while: the reader's browser may keep it, and
    # revalidate it by its ETag.
    response.headers["Cache-Control"] = "private, max-age=30, stale-while-revalidate=30"
    response.add_etag()
    if not request.args.get("rid"):  # no reader's own id: another reader may ask the same
        edge.keep(live_seconds())
    return response.make_conditional(request)


def decision_answer(args: Mapping[str, str], *, track: bool, known: Known | None,
                    now) -> dict | None:
    """What the decision answers for these parameters (the module's docstring); None when
    ``page`` is not on one of EMBED_ORIGINS' sites."""
    place = placement(args.get("page"), embed_origins())
    if place is None:
        return None
    facts = reader_facts(args, known=known, track=track)
    choices = decide(candidates(now), facts, now)
    return {"track": track, "prompts": [{
        "id": c.prompt_id, "placement": c.placement.value, "variant": c.variant,
        "period": c.period, "height": HEIGHTS[c.placement],
        "url": external_url("prompts.box", prompt_id=c.prompt_id, variant=c.variant,
                            page=place.page, track=int(track))} for c in choices]}


def _within_budget() -> bool:
    """One counting budget per address (``RATELIMIT_PROMPT_EVENTS``) for the boxes'
    impressions and dismissals and the give link's clicks; this request uses one of it."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return True
    address = get_remote_address()
    used = [limiter.call("hit", item, "prompt-events", address)
            for item in parse_many(config["RATELIMIT_PROMPT_EVENTS"])]
    return all(used)


def _prompt(prompt_id: int, variant: str) -> Prompt:
    prompt = db.session.get(Prompt, prompt_id) or abort(404)
    if variant not in prompt.variants:
        abort(404)
    return prompt


@bp.get("/embed/prompts/<int:prompt_id>/<variant>")
@limiter.exempt
def box(prompt_id: int, variant: str):
    """The prompt's box in its variant's words. Cacheable: nothing in it is the reader's."""
    prompt = _prompt(prompt_id, variant)
    place = _place()
    track = request.args.get("track") == "1"
    response = current_app.make_response(render_template(
        "prompts/box.html", place=place, prompt=prompt, variant=variant,
        copy=prompt.copy(variant), track=track,
        give_url=external_url("prompts.give", prompt_id=prompt.id, variant=variant,
                              page=place.page, track=int(track)),
        event_urls={e: external_url("prompts.event", prompt_id=prompt.id, variant=variant,
                                    event=e) for e in BOX_EVENTS}))
    response.headers["Cache-Control"] = "public, max-age=60, stale-while-revalidate=600"
    response.add_etag()
    edge.keep(KEEP_EDITED)
    return response.make_conditional(request)


@bp.get("/embed/prompts/<int:prompt_id>/<variant>/give")
@limiter.exempt
def give(prompt_id: int, variant: str):
    """The box's give link: counts the click (unless the reader asked not to be tracked, or
    the address used up its counting budget: the reader still goes on to give), then the
    campaign page at the top level, with the attribution the gift keeps."""
    prompt = _prompt(prompt_id, variant)
    place = _place()
    if tracking_allowed() and request.args.get("track") == "1" and _within_budget():
        count_event(prompt, variant, "clicks", now=utcnow())
        jobs.commit()
    page = place.page.split("?", 1)[0].split("://", 1)[-1]
    return redirect(external_url(
        "campaigns.campaign", slug=prompt.campaign.slug, utm_source="embed-prompt",
        utm_medium="embed", utm_campaign=prompt.campaign.slug[:UTM_MAX],
        utm_content=attribution(prompt.id, variant), utm_term=page[:UTM_MAX],
        _anchor="give-heading"), 303)


@bp.post("/embed/prompts/<int:prompt_id>/<variant>/<event>")
@limiter.exempt
@csrf.exempt  # a counter from our own frame, with no session; nothing personal is written
def event(prompt_id: int, variant: str, event: str):
    """An impression or a dismissal (a click is counted by ``give``)."""
    if event not in BOX_EVENTS:
        abort(404)
    prompt = _prompt(prompt_id, variant)
    origin = request.headers.get("Origin")
    if origin and origin not in ("null", public_origin()):
        abort(403)
    if not _within_budget():
        abort(429)
    if tracking_allowed():
        count_event(prompt, variant, event, now=utcnow())
        jobs.commit()
    return "", 204


@bp.get("/embed/prompts/status")
@limiter.exempt
def status():
    """At the top level, where our cookies are sent: back to the article with the status token
    in the address's fragment (never sent to a server; embed.js keeps it)."""
    place = _place()
    if current_user.is_authenticated:
        known = known_supporter(current_user, utcnow())
    else:
        known = status_signer().read(request.cookies.get(STATUS_COOKIE))
    if known is None:
        return redirect(place.page, 303)
    token = status_signer().token(Known(donor=known.donor, subscriber=known.subscriber))
    return redirect(f"{place.page}#newsfund-status={token}", 303)
