from decimal import Decimal

from flask import Blueprint, abort, current_app, render_template

from app.campaigns import pages
from app.campaigns.services import campaign_progress, get_campaign, list_campaigns
from app.db import utcnow
from app.extensions import limiter
from app.giving.forms import donation_form
from app.giving.services import GivingRules
from app.money import format_money

bp = Blueprint("campaigns", __name__)


@bp.get("/")
def home():
    now = utcnow()
    live, upcoming, ended = list_campaigns(now)
    progress = {c.id: campaign_progress(c, now) for c in live + ended}
    return render_template("campaigns/home.html", live=live, upcoming=upcoming, ended=ended,
                           progress=progress, now=now)


@bp.get("/campaigns/<slug>")
@limiter.exempt  # no limit applies to reading a page; skips the limiter's per-request work
def campaign(slug: str):
    now = utcnow()
    if pages.shared_page_applies():
        page = pages.campaign_page(slug, now, _render)
        if page is not None:
            return page
    campaign = get_campaign(slug) or abort(404)
    return render_campaign(campaign, donation_form(campaign))


def render_campaign(campaign, form, status: int = 200):
    """The campaign page; the giving view re-renders it with a failed form's errors."""
    now = utcnow()
    return _render(campaign, form, now, campaign_progress(campaign, now)), status


def _render(campaign, form, now, progress) -> str:
    live_elsewhere = None
    if not campaign.is_live(now):
        live = list_campaigns(now)[0]
        live_elsewhere = live[0] if live else None
    return render_template(
        "campaigns/campaign.html", campaign=campaign, form=form, now=now, progress=progress,
        live_elsewhere=live_elsewhere, fee=_fee_display(campaign, form),
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
