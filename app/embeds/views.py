"""The embeds: ``/embed.js`` for the newsroom's templates, and the boxes it frames.

Each box is a small page of ours in an iframe on an article page of one of ``EMBED_ORIGINS``:
only those sites may frame it (``frame-ancestors``), and its script (static/js/embed-frame.js)
posts its height to the article's origin only, named by the ``page`` parameter embed.js sends
and checked here. Nothing a box does needs our cookies: forms carry a signed form token, the
follow box a reader token got at the top level (``app.embeds.services``). Money is never taken
in a frame: a box's amounts open the campaign page at the top level.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from flask_login import current_user

from app import edge, jobs
from app.campaigns.services import campaign_progress, get_campaign
from app.config import signing_keys
from app.core import allow_framing
from app.db import utcnow
from app.embeds.forms import EmbedFollowForm, EmbedSubscribeForm
from app.embeds.services import (
    UTM_MAX,
    EmbedSigner,
    Placement,
    embed_utm,
    excerpt,
    origin_of,
    parse_origins,
    placement,
    reader_for,
)
from app.errors import wait_phrase
from app.extensions import csrf, limiter
from app.money import amount_text
from app.news.models import CategoryKind
from app.news.services import followed_category_ids, get_category, list_categories, set_follow
from app.news.views import start_subscription
from app.urls import external_url

bp = Blueprint("embeds", __name__)

SCRIPT = Path(__file__).parent.parent.parent / "static" / "js" / "embed.js"
#: In static/js/embed.js, where PUBLIC_URL's origin goes: the only origin whose messages the
#: article page takes.
ORIGIN_SLOT = "__NEWSFUND_ORIGIN__"
#: The ``utm_*`` a box passes on from its own address (a prompt's campaign and variant).
PASSED_UTM = ("utm_campaign", "utm_term")


def embed_origins() -> tuple[str, ...]:
    """``EMBED_ORIGINS`` read once per value (a list in tests, a string from the environment)."""
    value = current_app.config["EMBED_ORIGINS"]
    key = ("embed_origins", value if isinstance(value, str) else tuple(value))
    cached = current_app.extensions.get("embed_origins")
    if cached is None or cached[0] != key:
        cached = current_app.extensions["embed_origins"] = (key, parse_origins(value))
    return cached[1]


def signer() -> EmbedSigner:
    return EmbedSigner(signing_keys(current_app.config))


def public_origin() -> str:
    return origin_of(current_app.config["PUBLIC_URL"])


@bp.after_request
def embed_headers(response):
    """Boxes may be framed by EMBED_ORIGINS; the JSON is read by them (CORS, that origin
    only). embed.js itself is a script any page may load. The prompts' blueprint adds these
    to its own answers too."""
    origins = embed_origins()
    if response.mimetype == "text/html":
        allow_framing(response, origins)
    elif response.mimetype == "application/json":
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    return response


def _placement() -> Placement:
    """The article the box is on (``?page=``, or the form's), or a 400 page for any other."""
    place = placement(request.values.get("page"), embed_origins())
    if place is None:
        abort(400, description="This box is shown only on the newsroom's own pages.")
    return place


def _render(template: str, place: Placement, status: int = 200, **context):
    return render_template(f"embeds/{template}", place=place, **context), status


#: How long browsers and shared caches may keep what a box shows to everyone, then serve it
#: stale while they fetch it again (an article's readers mostly ask for the same box).
LIVE_FIGURES = "public, max-age=10, stale-while-revalidate=60"
#: A form's box: its token lasts FORM_TOKEN_MAX_AGE (2 h), more than these together.
FORM_BOX = "public, max-age=300, stale-while-revalidate=3600"
#: How long each process keeps, ahead of Flask (``app.edge``), a box that changes only when
#: staff edit what it shows (the sign-up box, a prompt's box: its copy).
KEEP_EDITED = 60.0


def live_seconds() -> float:
    """How long each process may keep what shows a campaign's live figures: as long as a
    campaign page may go without reading the ledger (CAMPAIGN_PAGE_RECHECK_SECONDS)."""
    return current_app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"]


def cacheable(body, cache_control: str, keep: float):
    """A 200 anyone may cache for a while, revalidated by its ETag, and kept by each process
    for ``keep`` seconds (``app.edge``)."""
    response = current_app.make_response(body)
    if response.status_code == 200:
        response.headers["Cache-Control"] = cache_control
        response.add_etag()
        response.make_conditional(request)
        edge.keep(keep)
    return response


@bp.errorhandler(429)
def too_many(error):
    """A box's form sent too often (``RATELIMIT_SUBSCRIBE``): said in the box, which still
    tells the article its height, rather than in the site's own error page."""
    seconds = limiter.retry_after()
    wait = (f"Try again in {wait_phrase(seconds)}." if seconds is not None
            else "Wait a minute and try again.")
    page = render_template("embeds/message.html", title="Too many attempts",
                           message=f"Too many requests in a short time. {wait}",
                           place=placement(request.values.get("page"), embed_origins()))
    headers = {"Retry-After": str(max(1, math.ceil(seconds)))} if seconds is not None else {}
    return page, 429, headers


# ------------------------------------------------------------------ the script


@bp.get("/embed.js")
@limiter.exempt
def script():
    """static/js/embed.js with PUBLIC_URL's origin written in; cached by browsers and proxies
    (revalidated by its ETag)."""
    origin = public_origin()
    cached = current_app.extensions.get("embed_script")
    if cached is None or cached[0] != origin:
        body = SCRIPT.read_text(encoding="utf-8").replace(ORIGIN_SLOT, json.dumps(origin)[1:-1])
        cached = (origin, body, hashlib.sha256(body.encode()).hexdigest()[:32])
        current_app.extensions["embed_script"] = cached
    response = current_app.response_class(cached[1], mimetype="text/javascript")
    response.set_etag(cached[2])
    response.headers["Cache-Control"] = "public, max-age=300, stale-while-revalidate=86400"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    edge.keep(300)
    return response.make_conditional(request)


# ------------------------------------------------------------------ the campaign box


@bp.get("/embed/campaigns/<slug>")
@limiter.exempt
def campaign(slug: str):
    """The appeal's box. The same for every reader of an article, so each process keeps it
    for up to CAMPAIGN_PAGE_RECHECK_SECONDS (:func:`live_seconds`): on most article views, the
    box costs no query."""
    campaign = get_campaign(slug) or abort(404)
    place = _placement()
    now = utcnow()
    utm = embed_utm("campaign", place.page)
    utm.update({name: request.args[name][:UTM_MAX] for name in PASSED_UTM
                if request.args.get(name)})
    amounts = [(s.amount, external_url("campaigns.campaign", slug=campaign.slug,
                                       amount=amount_text(s.amount, campaign.currency), **utm,
                                       _anchor="give-heading"))
               for s in campaign.suggested_amounts]
    return cacheable(_render(
        "campaign.html", place, campaign=campaign, live=campaign.is_live(now),
        progress=campaign_progress(campaign, now), amounts=amounts,
        excerpt=excerpt(campaign.appeal_markdown or campaign.summary),
        other_url=external_url("campaigns.campaign", slug=campaign.slug, **utm,
                               _anchor="give-heading")), LIVE_FIGURES, live_seconds())


@bp.get("/embed/campaigns/<slug>/progress")
@limiter.exempt
def campaign_progress_json(slug: str):
    """The live figures, for EMBED_ORIGINS' own pages and the box's refresh."""
    campaign = get_campaign(slug) or abort(404)
    p = campaign_progress(campaign, utcnow())
    return cacheable(jsonify(raised=p.raised, goal=p.goal, currency=p.currency,
                             percent=p.percent, donors=p.donors, gifts=p.gifts,
                             days_left=p.days_left), LIVE_FIGURES, live_seconds())


# ------------------------------------------------------------------ the daily-email box


@bp.route("/embed/news/subscribe", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_SUBSCRIBE"], methods=["POST"])
@csrf.exempt  # no session in a cross-site frame: the form's signed token stands for it
def subscribe():
    place = _placement()
    if request.method == "GET":
        return cacheable(_subscribe_box(EmbedSubscribeForm(formdata=None), place), FORM_BOX,
                         KEEP_EDITED)
    _same_origin_post()
    form = EmbedSubscribeForm()
    if not signer().form_token_valid(form.form_token.data, "subscribe"):
        form.validate()
        form.form_errors.append("This form expired. Please check your address and send it "
                                "again.")
        return _subscribe_box(form, place, 400)
    if not form.validate():
        return _subscribe_box(form, place, 422)
    start_subscription(form.email.data, "/embed/news/subscribe")
    return _render("subscribed.html", place)


def _subscribe_box(form: EmbedSubscribeForm, place: Placement, status: int = 200):
    form.form_token.data = signer().form_token("subscribe")
    form.page.data = place.page
    return _render("subscribe.html", place, status, form=form)


def _same_origin_post() -> None:
    """A box's form is posted from its own frame, on our origin: a browser that says it posts
    from anywhere else is refused (the form token is the check when it says nothing)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin != public_origin():
        abort(403)


# ------------------------------------------------------------------ the follow box


@bp.get("/embed/news/follow")
@limiter.exempt
def follow():
    place = _placement()
    token = request.args.get("reader")
    if not token:  # the same "sign in" box for everyone
        return cacheable(_follow_box(place, None, None), FORM_BOX, KEEP_EDITED)
    response = current_app.make_response(_follow_box(place, reader_for(token, signer()), token))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/embed/news/follow/<slug>")
@limiter.limit(lambda: current_app.config["RATELIMIT_SUBSCRIBE"])
@csrf.exempt  # no session in a cross-site frame: the form token and the reader token sign it
def follow_category(slug: str):
    place = _placement()
    _same_origin_post()
    form = EmbedFollowForm()
    reader = reader_for(form.reader.data, signer())
    if reader is None:
        return _follow_box(place, None, None, 403)
    category = get_category(slug) or abort(404)
    if not form.validate() or not signer().form_token_valid(form.form_token.data, "follow"):
        return _follow_box(place, reader, form.reader.data, 400,
                           problem="This box expired. Please try again.")
    following = set_follow(reader.id, category, form.follow.data == "1")
    jobs.commit()
    message = (f"You follow {category.name}." if following
               else f"You no longer follow {category.name}.")
    return _follow_box(place, reader, form.reader.data, message=message)


def _follow_box(place: Placement, reader, token: str | None, status: int = 200, *,
                message: str | None = None, problem: str | None = None):
    if reader is None:
        return _render("follow_signin.html", place, status,
                       signin_url=external_url("embeds.follow_connect", page=place.page))
    categories = list_categories()
    return _render(
        "follow.html", place, status, groups=[
            (kind, [c for c in categories if c.kind is kind]) for kind in CategoryKind],
        followed=followed_category_ids(reader.id), reader_token=token,
        form_token=signer().form_token("follow"), message=message, problem=problem)


@bp.get("/embed/news/follow/connect")
def follow_connect():
    """At the top level, where the reader's own cookie is sent: back to the article with a
    reader token for its follow box in the address's fragment (never sent to any server;
    embed.js keeps it in the article site's storage and takes it out of the address). Not
    signed in, the sign-in page first; a page not on EMBED_ORIGINS is refused before that."""
    place = _placement()
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    token = signer().reader_token(current_user.id, current_user.session_version)
    return redirect(f"{place.page}#newsfund-reader={token}", 303)
