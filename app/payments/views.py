"""Webhook endpoints (``POST /webhooks/stripe``, ``/webhooks/sandbox``) and the signed
card-update link sent when a renewal fails."""

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import RequestEntityTooLarge

from app import jobs
from app.config import signing_keys
from app.extensions import csrf, db, limiter
from app.giving.models import PlanStatus, RecurringPlan
from app.payments.base import InvalidEvent, ProviderError
from app.payments.events import RetryLater, event_settings, receive_event
from app.payments.providers import current_provider, provider_named
from app.urls import external_url

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)

CARD_LINK_MAX_AGE = 14 * 24 * 3600


@bp.post("/webhooks/<name>")
@csrf.exempt
@limiter.exempt
def webhook(name: str):
    provider = provider_named(name)
    if provider is None:
        abort(404)
    # Events have their own size limit, larger than a form's, checked on the Content-Length
    # before a byte is read (and while reading, for a body sent in chunks).
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]
    try:
        created = receive_event(provider, request.get_data(), request.headers,
                                settings=event_settings(current_app.config))
    except RequestEntityTooLarge:
        log.warning("%s webhook refused: body over %s bytes", name,
                    request.max_content_length)
        return jsonify(error="body too large"), 413
    except InvalidEvent as exc:
        db.session.rollback()
        log.warning("%s webhook refused: %s", name, exc)
        return jsonify(error=str(exc)), 400
    except RetryLater as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 409
    jobs.commit()
    return jsonify(received=True, duplicate=not created)


def _card_links() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(current_app.config), salt="card-update")


@bp.app_template_global()
def card_update_url(plan_id: int) -> str:
    """The signed link, valid two weeks, to the provider's card-update page for a plan (in
    the mail of a failed renewal, which a webhook job builds: on PUBLIC_URL)."""
    return external_url("payments.update_card", token=_card_links().dumps(plan_id))


def _linked_plan(token: str) -> RecurringPlan:
    """The running plan a signed card-update link names; 410 when the link is too old, 404
    when it is not ours or the plan cannot take a card."""
    try:
        plan_id = _card_links().loads(token, max_age=CARD_LINK_MAX_AGE)
    except SignatureExpired:
        abort(410)
    except BadSignature:
        abort(404)
    plan = db.session.get(RecurringPlan, plan_id)
    if plan is None or plan.status is PlanStatus.CANCELED or not plan.provider_customer_id:
        abort(404)
    return plan


@bp.get("/billing/card/<token>")
@limiter.limit(lambda: current_app.config["RATELIMIT_CHECKOUT"])
def update_card(token: str):
    """Open the provider's card-update page for the plan a signed link names."""
    plan = _linked_plan(token)
    try:
        url = current_provider().billing_portal_url(
            customer_id=plan.provider_customer_id,
            return_url=external_url("campaigns.home"),
            updated_url=external_url("payments.card_updated", token=token))
    except ProviderError:
        abort(503)
    return redirect(url, 303)


@bp.get("/billing/card/<token>/updated")
def card_updated(token: str):
    """Where the provider sends the donor once the new card is saved (and only then)."""
    return render_template("payments/card_updated.html", plan=_linked_plan(token))
