"""Receipt PDFs for download: a supporter's own, and any receipt for finance staff."""

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
from flask_login import current_user, login_required

from app import jobs
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.documents import DocumentSettings, get_receipt, receipt_filename, receipt_pdf
from app.finance.forms import METHOD_LABELS, CorrectionForm, OfflineGiftForm, ReversalForm
from app.finance.offline import (
    campaign_choices,
    correct_offline_gift,
    offline_gift_record,
    recent_offline_gifts,
    record_offline_gift,
    reverse_offline_gift,
)
from app.finance.receipts import current_receipt
from app.staff.models import Role
from app.staff.roles import current_roles, roles_required
from app.templating import org_zone

bp = Blueprint("finance", __name__)


@bp.after_request
def private(response: Response) -> Response:
    """Finance pages and documents hold donors' data: never cached by a browser or a proxy."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.context_processor
def staff_context():
    """What templates/staff/_staff.html needs (its nav shows what the roles may open)."""
    return {"staff_roles": current_roles(), "Role": Role}


def _pdf(receipt) -> Response:
    body = receipt_pdf(receipt, DocumentSettings.from_config(current_app.config))
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{receipt_filename(receipt)}"',
        "Cache-Control": "private, no-store",
    })


@bp.get("/account/receipts/<number>.pdf")
@login_required
def my_receipt(number: str):
    """A signed-in supporter's own receipt; anyone else's number is a 404, not a 403."""
    try:
        return _pdf(get_receipt(number, supporter_id=current_user.id))
    except FinanceError:
        abort(404)


@bp.get("/staff/finance/receipts/<number>.pdf")
@roles_required(Role.FINANCE)
def receipt(number: str):
    try:
        return _pdf(get_receipt(number))
    except FinanceError:
        abort(404)


# -- offline gifts ------------------------------------------------------------------------------

OFFLINE_LIST_LIMIT = 200


def _actor() -> Actor:
    return Actor.of(current_user)


def _show_error(form, exc: FinanceError) -> None:
    """Undo what the failed service call wrote, and show its message beside its field."""
    db.session.rollback()
    jobs.discard()
    target = getattr(form, exc.field, None) if exc.field else None
    if hasattr(form, "add_error"):
        form.add_error(exc.field, exc.message)
    elif target is not None and hasattr(target, "errors"):
        target.errors = [*target.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _status(*forms) -> int:
    return 422 if any(f.errors or f.form_errors for f in forms) else 200


@bp.get("/staff/finance/offline")
@roles_required(Role.FINANCE)
def offline_gifts():
    return render_template("finance/offline_list.html", limit=OFFLINE_LIST_LIMIT,
                           rows=recent_offline_gifts(OFFLINE_LIST_LIMIT),
                           method_labels=METHOD_LABELS)


@bp.route("/staff/finance/offline/new", methods=["GET", "POST"])
@roles_required(Role.FINANCE)
def offline_new():
    form = OfflineGiftForm(campaigns=campaign_choices())
    if request.method == "GET":
        form.received_on.data = utcnow().astimezone(org_zone()).date()
    if form.validate_on_submit():
        try:
            gift = record_offline_gift(form.to_entry(), actor=_actor(), zone=org_zone(),
                                       now=utcnow(), send_receipt=form.send_receipt.data)
            receipt = current_receipt(gift)
        except FinanceError as exc:
            _show_error(form, exc)
        else:
            gift_id, number = gift.id, receipt.number if receipt else None
            jobs.commit()
            flash(f"Gift recorded with receipt {number}"
                  + (", emailed to the donor." if form.send_receipt.data else "."), "success")
            return redirect(url_for("finance.offline_gift", gift_id=gift_id), 303)
    return render_template("finance/offline_form.html", form=form), _status(form)


def _gift_page(gift_id: int, *, correction: CorrectionForm | None = None,
               reversal: ReversalForm | None = None):
    try:
        record = offline_gift_record(gift_id)
    except FinanceError:
        abort(404)
    if correction is None:
        correction = CorrectionForm(formdata=None, campaigns=campaign_choices(),
                                    prefix="correct")
        correction.fill(record.gift, record.charge, org_zone())
    reversal = reversal or ReversalForm(formdata=None, prefix="reverse")
    return render_template("finance/offline_gift.html", record=record, correction=correction,
                           reversal=reversal, method_labels=METHOD_LABELS
                           ), _status(correction, reversal)


@bp.get("/staff/finance/offline/<int:gift_id>")
@roles_required(Role.FINANCE)
def offline_gift(gift_id: int):
    return _gift_page(gift_id)


@bp.post("/staff/finance/offline/<int:gift_id>/correct")
@roles_required(Role.FINANCE)
def offline_correct(gift_id: int):
    try:
        record = offline_gift_record(gift_id)
    except FinanceError:
        abort(404)
    form = CorrectionForm(campaigns=campaign_choices(), prefix="correct")
    if form.validate_on_submit():
        zone = org_zone()
        changes = form.changes(record.gift, record.charge, zone)
        if not changes:
            form.form_errors.append("Nothing to correct: change at least one value.")
        else:
            try:
                correct_offline_gift(gift_id, changes, reason=form.reason.data, actor=_actor(),
                                     zone=zone, now=utcnow(),
                                     send_receipt=form.send_receipt.data)
            except FinanceError as exc:
                _show_error(form, exc)
            else:
                jobs.commit()
                flash(f"Gift corrected ({', '.join(sorted(changes))}).", "success")
                return redirect(url_for("finance.offline_gift", gift_id=gift_id), 303)
    return _gift_page(gift_id, correction=form)


@bp.post("/staff/finance/offline/<int:gift_id>/reverse")
@roles_required(Role.FINANCE)
def offline_reverse(gift_id: int):
    form = ReversalForm(prefix="reverse")
    if form.validate_on_submit():
        try:
            reverse_offline_gift(gift_id, reason=form.reason.data, actor=_actor(), now=utcnow())
        except FinanceError as exc:
            if exc.field == "gift":
                abort(404)
            _show_error(form, exc)
        else:
            jobs.commit()
            flash("Gift reversed: a refund is recorded and its receipt is void.", "success")
            return redirect(url_for("finance.offline_gift", gift_id=gift_id), 303)
    return _gift_page(gift_id, reversal=form)

