from flask import Blueprint, abort, current_app, redirect, render_template, request

from app import jobs
from app.campaigns.pages import mark_donor
from app.campaigns.services import get_campaign
from app.campaigns.views import render_campaign
from app.db import utcnow
from app.extensions import db, limiter
from app.giving.forms import donation_form
from app.giving.services import (
    GiftError,
    GivingRules,
    begin_checkout,
    gift_by_public_id,
    start_gift,
)
from app.payments.base import ProviderError
from app.payments.providers import current_provider
from app.urls import external_url

bp = Blueprint("giving", __name__)


@bp.post("/campaigns/<slug>/give")
@limiter.limit(lambda: current_app.config["RATELIMIT_GIVE"])
def give(slug: str):
    campaign = get_campaign(slug) or abort(404)
    form = donation_form(campaign, formdata=request.form)
    if form.validate():
        try:
            gift = start_gift(campaign, form.to_request(),
                              rules=GivingRules.from_config(current_app.config), now=utcnow())
            url = begin_checkout(
                gift, current_provider(),
                success_url=external_url("giving.thanks", public_id=gift.public_id),
                cancel_url=external_url("campaigns.campaign", slug=slug),
            )
        except GiftError as exc:
            db.session.rollback()
            form.add_error(exc.field, exc.message)
        except ProviderError as exc:
            db.session.rollback()
            form.add_error(None, str(exc))
        else:
            jobs.commit()
            return redirect(url, 303)
    return render_campaign(campaign, form, status=422)


@bp.get("/thanks/<public_id>")
def thanks(public_id: str):
    gift = gift_by_public_id(public_id) or abort(404)
    mark_donor()  # back on the campaign page, they see their gift counted at once
    return render_template("giving/thanks.html", gift=gift, campaign=gift.campaign)
