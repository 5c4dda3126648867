"""Webhook endpoints (``POST /webhooks/stripe``, ``/webhooks/sandbox``) and the signed
card-update link sent when a renewal fails."""

from flask import Blueprint, abort, current_app, jsonify, redirect, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app import jobs
from app.extensions import csrf, db, limiter
from app.giving.models import PlanStatus, RecurringPlan
from app.payments.base import InvalidEvent, ProviderError
from app.payments.events import RetryLater, receive_event
from app.payments.providers import current_provider, provider_named
from app.urls import external_url

bp = Blueprint("payments", __name__)

CARD_LINK_MAX_AGE = 14 * 24 * 3600


@bp.post("/webhooks/<name>")
@csrf.exempt
@limiter.exempt
def webhook(name: str):
    provider = provider_named(name)
    if provider is None:
        abort(404)
    try:
        created = receive_event(provider, request.get_data(), request.headers)
    except InvalidEvent as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 400
    except RetryLater as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 409
    jobs.commit()
    return jsonify(received=True, duplicate=not created)


def _card_links() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="card-update")


@bp.app_template_global()
def card_update_url(plan_id: int) -> str:
    """The signed link, valid two weeks, to the provider's card-update page for a plan (in
    the mail of a failed renewal, which a webhook job builds: on PUBLIC_URL)."""
    return external_url("payments.update_card", token=_card_links().dumps(plan_id))


@bp.get("/billing/card/<token>")
@limiter.limit(lambda: current_app.config["RATELIMIT_CHECKOUT"])
def update_card(token: str):
    """Open the provider's card-update page for the plan a signed link names."""
    try:
        plan_id = _card_links().loads(token, max_age=CARD_LINK_MAX_AGE)
    except SignatureExpired:
        abort(410)
    except BadSignature:
        abort(404)
    plan = db.session.get(RecurringPlan, plan_id)
    if plan is None or plan.status is PlanStatus.CANCELED or not plan.provider_customer_id:
        abort(404)
    try:
        url = current_provider().billing_portal_url(
            customer_id=plan.provider_customer_id,
            return_url=external_url("campaigns.home"))
    except ProviderError:
        abort(503)
    return redirect(url, 303)
