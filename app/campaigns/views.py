from decimal import Decimal

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from app.campaigns import pages
from app.campaigns.services import campaign_progress, get_campaign, list_campaigns, main_appeal
from app.db import utcnow
from app.extensions import limiter
from app.giving.forms import donation_form
from app.giving.services import UTM_FIELDS, GivingRules, gift_to_refill
from app.giving.started import started_gifts
from app.money import format_money

bp = Blueprint("campaigns", __name__)


@bp.get("/")
def home():
    now = utcnow()
    live, upcoming, ended = list_campaigns(now)
    # The six latest past campaigns (each one more ledger query); older ones keep their pages.
    ended = ended[:6]
    progress = {c.id: campaign_progress(c, now) for c in live + ended}
    return render_template("campaigns/home.html", live=live, upcoming=upcoming, ended=ended,
                           progress=progress, now=now)


@bp.get("/give")
@limiter.exempt
def give_now():
    """Where every page's "Give" links go (the header's, the phone's bottom bar): the main
    appeal (``main_appeal``), or the home page when no campaign is live. A redirect, so that
    pages carry one fixed link, need no query for it and never point at an appeal that has
    ended; a link's ``utm_*`` parameters, and the amount and frequency it chooses, go along."""
    campaign = main_appeal(utcnow())
    if campaign is None:
        return redirect(url_for("campaigns.home"))
    passed = {name: request.args[name] for name in (*UTM_FIELDS, "amount", "frequency")
              if request.args.get(name)}
    return redirect(url_for("campaigns.campaign", slug=campaign.slug, **passed))


@bp.get("/campaigns/<slug>")
@limiter.exempt  # no limit applies to reading a page; skips the limiter's per-request work
def campaign(slug: str):
    now = utcnow()
    if pages.shared_page_applies():
        page = pages.campaign_page(slug, now, _render)
        if page is not None:
            return page
    campaign = get_campaign(slug) or abort(404)
    gift = None
    if request.args.get("gift"):
        gift = gift_to_refill(campaign, request.args["gift"], started=started_gifts(), now=now)
    page, status = render_campaign(campaign, donation_form(campaign, gift=gift))
    # Filled with a donor's details: for this browser only, never kept by a cache.
    headers = {"Cache-Control": "private, no-store"} if gift is not None else {}
    return page, status, headers


def render_campaign(campaign, form, status: int = 200):
    """The campaign page; the giving view re-renders it with a failed form's errors."""
    now = utcnow()
    return _render(campaign, form, now, campaign_progress(campaign, now)), status


def _render(campaign, form, now, progress) -> str:
    live_elsewhere = None if campaign.is_live(now) else main_appeal(now)
    return render_template(
        "campaigns/campaign.html", campaign=campaign, form=form, now=now, progress=progress,
        live_elsewhere=live_elsewhere, fee=_fee_display(campaign, form), preview=False,
    )


def _fee_display(campaign, form) -> dict:
    """The exact fee for the amount selected when the page is rendered, and the formula for
    when no amount is known yet (the page's script recomputes it as the donor types)."""
    rules = GivingRules.from_config(current_app.config)
    percent = Decimal(rules.fee_percent_bp) / 100
    fixed = format_money(rules.fee_fixed, campaign.currency, current_app.config["ORG_LOCALE"])
    formula = f"{percent.normalize():f}% + {fixed}"
    try:
        amount = form.amount_minor()
    except (AttributeError, TypeError, ValueError):
        amount = None
    return {"selected": rules.fee_for(amount) if amount and amount > 0 else None,
            "formula": formula}
