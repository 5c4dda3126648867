"""The operations inbox's pages under /staff/operations, for finance staff (and admins): the
inbox, its actions (each a POST with its CSRF token, audited by ``app.staff.operations``), and
refunds of online gifts. Views parse a form, call one service, then flash and redirect."""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from app import jobs
from app.audit import Actor, find_entries
from app.db import utcnow
from app.extensions import db
from app.giving.models import Gift
from app.giving.services import (
    GiftError,
    online_refund_problem,
    refundable,
    request_refund,
)
from app.mail import current_mailer
from app.payments.base import ProviderError
from app.payments.events import event_settings
from app.payments.models import Payment, PaymentKind
from app.payments.providers import current_provider
from app.staff import operations
from app.staff.forms import ButtonForm, GiftLookupForm, RefundForm
from app.staff.models import Role
from app.staff.roles import roles_required, staff_pages

bp = staff_pages(Blueprint("operations", __name__, url_prefix="/staff/operations"))

FINANCE = (Role.FINANCE,)


def _actor() -> Actor:
    return Actor.of(current_user)


def _back() -> Response:
    return redirect(url_for("operations.inbox"), 303)


def _button() -> None:
    if not ButtonForm().validate_on_submit():
        abort(400)


@bp.get("/")
@roles_required(*FINANCE)
def inbox():
    settings = operations.Settings.from_config(current_app.config)
    box = operations.inbox(now=utcnow(), settings=settings, backend=jobs.backend())
    return render_template("staff/operations.html", box=box, now=utcnow(),
                           settings=settings, button_form=ButtonForm(),
                           lookup=GiftLookupForm(formdata=None),
                           describe=operations.event_type_and_object, age=operations.age)


@bp.post("/events/<int:event_id>/retry")
@roles_required(*FINANCE)
def retry_event(event_id: int):
    _button()
    try:
        outcome = operations.retry_event(
            event_id, actor=_actor(), settings=event_settings(current_app.config))
    except operations.OperationsError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Event retried: {outcome}.", "success" if outcome == "applied" else "error")
    return _back()


@bp.post("/jobs/<job_id>/retry")
@roles_required(*FINANCE)
def retry_job(job_id: str):
    _button()
    try:
        name = operations.retry_job(jobs.backend(), job_id, actor=_actor())
    except operations.OperationsError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Job {name} is queued again.", "success")
    return _back()


@bp.post("/mail/<int:email_id>/resend")
@roles_required(*FINANCE)
def resend_mail(email_id: int):
    _button()
    try:
        error = operations.resend_mail(email_id, actor=_actor(),
                                       transport=current_mailer().transport)
    except operations.OperationsError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Not delivered again: {error}" if error else "Delivered.",
              "error" if error else "success")
    return _back()


@bp.post("/sync")
@roles_required(*FINANCE)
def sync_now():
    _button()
    try:
        report = operations.run_sync(current_provider(), actor=_actor(),
                                     settings=event_settings(current_app.config))
    except operations.OperationsError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Catch-up sync: {report.listed} events listed, {report.applied} applied now, "
              f"{report.known} received before, {len(report.waiting)} still waiting, "
              f"{len(report.failed)} failed.", "error" if report.failed else "success")
    return _back()


@bp.post("/fees/<int:payment_id>/settle")
@roles_required(*FINANCE)
def settle_fee(payment_id: int):
    _button()
    try:
        known = operations.settle_fee(payment_id, actor=_actor())
    except operations.OperationsError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash("The fee is known now." if known else "The provider has not reported it yet.",
              "success" if known else "error")
    return _back()


# -- refunds of online gifts ------------------------------------------------------------------

def _refund_page(gift: Gift | None, *, form: RefundForm | None = None,
                 lookup: GiftLookupForm | None = None, status: int = 200):
    left = None
    charge = problem = None
    if gift is not None:
        charge = db.session.scalar(select(Payment).where(Payment.gift_id == gift.id,
                                                         Payment.kind == PaymentKind.CHARGE))
        try:
            left = refundable(gift)[2]
        except GiftError:
            left = 0
        problem = online_refund_problem(charge, current_provider()) if charge else None
        if form is None:
            form = RefundForm(formdata=None, key=secrets.token_urlsafe(24))
    ledger_rows = list(db.session.scalars(
        select(Payment).where(Payment.gift_id == gift.id).order_by(Payment.occurred_at,
                                                                  Payment.id))) if gift else []
    history = find_entries(target=f"gift:{gift.id}", limit=50) if gift else []
    return render_template("staff/refund.html", gift=gift, charge=charge, left=left, form=form,
                           problem=problem,
                           lookup=lookup or GiftLookupForm(formdata=None), ledger=ledger_rows,
                           history=history), status


@bp.get("/refunds")
@roles_required(*FINANCE)
def refund_lookup():
    """Find the gift to refund by its number or reference."""
    if "gift" not in request.args:
        return _refund_page(None)
    lookup = GiftLookupForm(request.args)
    gift = None
    if lookup.validate():
        gift = operations.find_gift(lookup.gift.data)
        if gift is None:
            lookup.gift.errors = [*lookup.gift.errors, "No gift has this number or reference."]
    return _refund_page(gift, lookup=lookup, status=200 if gift else 422)


@bp.post("/refunds/<int:gift_id>")
@roles_required(*FINANCE)
def refund(gift_id: int):
    gift = db.session.get(Gift, gift_id) or abort(404)
    form = RefundForm()
    if form.validate_on_submit():
        try:
            amount = form.amount_minor(gift.currency)
            result = request_refund(gift, current_provider(), amount=amount,
                                    reason=form.reason.data, key=form.key.data, actor=_actor())
        except ValueError:
            pass  # beside its field already
        except GiftError as exc:
            db.session.rollback()
            target = getattr(form, exc.field, None) if exc.field else None
            if target is not None:
                target.errors = [*target.errors, exc.message]
            else:
                form.form_errors.append(exc.message)
        except ProviderError as exc:
            db.session.rollback()
            form.form_errors.append(f"The payment provider refused: {exc}")
        else:
            jobs.commit()
            flash(f"Refund {result.id} asked of the payment provider ({result.status}). The "
                  "ledger and the receipt change when its refund event arrives.", "success")
            return redirect(url_for("operations.refund_lookup", gift=gift.id), 303)
    return _refund_page(gift, form=form, status=422)
