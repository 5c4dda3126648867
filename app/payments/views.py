"""Webhook endpoints: `POST /webhooks/<provider>`, e.g. `/webhooks/stripe`, `/webhooks/sandbox`."""

from flask import Blueprint, abort, jsonify, request

from app import jobs
from app.extensions import csrf, db, limiter
from app.payments.base import InvalidEvent
from app.payments.events import RetryLater, receive_event
from app.payments.providers import provider_named

bp = Blueprint("payments", __name__)


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
