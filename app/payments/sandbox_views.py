"""The sandbox's hosted checkout page, registered only when the sandbox is the provider.

It plays the part of Stripe's page: it shows what is being paid, takes a test card, decides its
fate from Stripe's test-card table, and on success delivers the signed events through the
webhook pipeline before sending the donor back to the success URL. The card number is checked
and dropped; it is never stored or logged.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, redirect, render_template
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from app import jobs
from app.db import utcnow
from app.extensions import limiter
from app.payments.events import event_settings, receive_event
from app.payments.providers import current_provider
from app.payments.sandbox import CardDeclined, SandboxProvider, card_of, check_card

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")


class CardForm(FlaskForm):
    name = StringField("Name on card", validators=[DataRequired("Enter the name on the card."),
                                                   Length(max=200)])
    number = StringField("Card number", validators=[
        DataRequired("Enter the card number."),
        Regexp(r"^[\d ]{13,23}$", message="Enter the 13 to 19 digits of the card number."),
    ])
    expiry = StringField("Expiry (MM / YY)", validators=[
        DataRequired("Enter the expiry date."),
        Regexp(r"^\s*(0[1-9]|1[0-2])\s*/\s*(\d{2})\s*$", message="Enter the expiry as MM / YY."),
    ])
    cvc = StringField("Security code (CVC)", validators=[
        DataRequired("Enter the security code."),
        Regexp(r"^\d{3,4}$", message="Enter the 3 or 4 digits on the card."),
    ])


def deliver(provider: SandboxProvider, event: dict, *, defer: bool | None = None) -> bool:
    """Sign one event and put it through the webhook pipeline, committing as a webhook would
    (``defer`` as in ``receive_event``)."""
    payload, headers = provider.encode(event)
    created = receive_event(provider, payload, headers, defer=defer,
                            settings=event_settings(current_app.config))
    jobs.commit()
    return created


def deliver_event_job(event: dict) -> None:
    """A job: deliver an event the sandbox made during a request (a refund's), after that
    request's commit, as Stripe's webhook would arrive after its API call."""
    provider = current_provider()
    if isinstance(provider, SandboxProvider):
        deliver(provider, event)


@bp.route("/checkout/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_CHECKOUT"], methods=["POST"])
def checkout(token: str):
    provider = current_provider()
    session = provider.load_session(token)
    if session is None:
        abort(404)
    form, accepted, error = _card_sent()
    if accepted:
        # Only the brand and last four digits go on: the number itself is dropped here.
        for event in provider.completion_events(session, name=form.name.data, now=time.time(),
                                                card=card_of(form.number.data)):
            deliver(provider, event)
        return redirect(session.success_url, 303)
    return render_template("sandbox/checkout.html", session=session, form=_blank_card(form),
                           error=error), _status(form, error)


@bp.route("/portal/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_CHECKOUT"], methods=["POST"])
def portal(token: str):
    """The stand-in for Stripe's customer portal: replace the card on file, then go back (to
    the address for a saved card, as Stripe's card-update flow does; "Cancel and go back" to
    the plain return address)."""
    portal = current_provider().load_portal(token)
    if portal is None:
        abort(404)
    form, accepted, error = _card_sent()
    if accepted:
        return redirect(portal.get("updated_url") or portal["return_url"], 303)
    return render_template("sandbox/portal.html", portal=portal, form=_blank_card(form),
                           error=error), _status(form, error)


def _card_sent() -> tuple[CardForm, bool, str | None]:
    """The card form; whether a card was sent with it and accepted; why it was declined."""
    form = CardForm()
    if not form.validate_on_submit():
        return form, False, None
    error = _decline_reason(form)
    return form, error is None, error


def _decline_reason(form: CardForm) -> str | None:
    month, year = (int(x) for x in form.expiry.data.replace(" ", "").split("/"))
    try:
        check_card(form.number.data, month, 2000 + year, form.cvc.data, utcnow())
    except CardDeclined as declined:
        return declined.message
    return None


def _blank_card(form: CardForm) -> CardForm:
    """Never echo the card number or code back into the page."""
    form.number.data = form.cvc.data = ""
    return form


def _status(form: CardForm, error: str | None) -> int:
    return 402 if error else (422 if form.errors else 200)
