from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from app import jobs
from app.campaigns.pages import mark_donor
from app.campaigns.services import get_campaign
from app.campaigns.views import render_campaign
from app.core import checks_unreadable_text
from app.db import utcnow
from app.extensions import db, limiter
from app.giving.forms import donation_form
from app.giving.models import Frequency, GiftStatus
from app.giving.services import (
    GiftError,
    GivingRules,
    begin_checkout,
    gift_by_public_id,
    give_again_url,
    offers_monthly,
    start_gift,
)
from app.giving.sharing import share_links
from app.giving.started import remember_started_gift
from app.money import amount_text
from app.payments.base import ProviderError
from app.payments.providers import current_provider
from app.prompts.decide import DonorStatus
from app.prompts.status_views import remember_status
from app.prompts.views import article_link
from app.urls import external_url

bp = Blueprint("giving", __name__)


@bp.post("/campaigns/<slug>/give")
@checks_unreadable_text  # the form says so beside the field (app.core.Readable)
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
                # Back on the campaign page, this browser finds the form as it was filled in.
                cancel_url=external_url("campaigns.campaign", slug=slug, gift=gift.public_id),
            )
        except GiftError as exc:
            db.session.rollback()
            form.add_error(exc.field, exc.message)
        except ProviderError as exc:
            db.session.rollback()
            form.add_error(None, str(exc))
        else:
            jobs.commit()
            remember_started_gift(gift.public_id)
            return redirect(url, 303)
    return render_campaign(campaign, form, status=422)


@bp.get("/thanks/<public_id>")
def thanks(public_id: str):
    gift = gift_by_public_id(public_id) or abort(404)
    mark_donor()  # back on the campaign page, they see their gift counted at once
    campaign = gift.campaign
    campaign_url = external_url("campaigns.campaign", slug=campaign.slug)
    monthly_url = None
    if offers_monthly(gift, utcnow()):
        # The donation form, filled in for a monthly gift of the same amount (and, in this
        # browser, with the donor's details); the offer's gifts show as its own source.
        monthly_url = url_for("campaigns.campaign", slug=campaign.slug, frequency="monthly",
                              amount=amount_text(gift.amount, gift.currency),
                              gift=gift.public_id, utm_source="thank-you",
                              utm_medium="monthly-offer")
    retry_url = give_again_url(gift, now=utcnow()) if gift.status is GiftStatus.FAILED else None
    response = make_response(render_template(
        "giving/thanks.html", gift=gift, campaign=campaign, campaign_url=campaign_url,
        share=share_links(campaign_url, title=campaign.title,
                          org_name=current_app.config["ORG_NAME"]),
        monthly_url=monthly_url, retry_url=retry_url,
        article_url=article_link({name: getattr(gift, name) for name in (
            "utm_source", "utm_medium", "utm_term", "utm_content")})))
    if gift.status.counts:
        # The prompts on the newsroom's pages then thank rather than ask (app.prompts).
        remember_status(response, donor=DonorStatus.MONTHLY
                        if gift.frequency is Frequency.MONTHLY else DonorStatus.RECENT)
    return response
