"""Receipt PDFs for download: a supporter's own, and any receipt for finance staff."""

import time

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

from app import audit, jobs
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.documents import DocumentSettings, get_receipt, receipt_filename, receipt_pdf
from app.finance.forms import (
    METHOD_LABELS,
    CorrectionForm,
    OfflineGiftForm,
    ReversalForm,
    StatementPreviewForm,
    StatementSendForm,
    StatementYearForm,
)
from app.finance.offline import (
    campaign_choices,
    correct_offline_gift,
    offline_gift_record,
    recent_offline_gifts,
    record_offline_gift,
    reverse_offline_gift,
)
from app.finance.receipts import current_receipt
from app.finance.statements import (
    count_donors,
    count_sent,
    find_donor,
    queue_statements,
    statement_pdf,
)
from app.mail import deliver_batch
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


# -- year-end statements ------------------------------------------------------------------------

STATEMENT_BATCH = 50  # donors queued and committed together


def _default_year() -> int:
    return utcnow().astimezone(org_zone()).year - 1


def _settings() -> DocumentSettings:
    return DocumentSettings.from_config(current_app.config)


def _statements_page(year: int | None, *, preview: StatementPreviewForm | None = None,
                     send: StatementSendForm | None = None,
                     year_form: StatementYearForm | None = None):
    year_form = year_form or StatementYearForm(formdata=None, year=year)
    donors = sent = None
    problem = None
    if year is not None:
        try:
            donors = count_donors(year)
        except FinanceError as exc:
            problem = exc.message
        else:
            sent = count_sent(year)
    preview = preview or StatementPreviewForm(formdata=None, year=year)
    send = send or StatementSendForm(formdata=None, year=year)
    running = request.args.get("continue") == "1" and donors is not None and sent < donors
    status = 422 if any(f.errors or f.form_errors for f in (year_form, preview, send)) else 200
    return render_template("finance/statements.html", year=year, donors=donors, sent=sent,
                           problem=problem, year_form=year_form, preview=preview, send=send,
                           running=running), status


@bp.get("/staff/finance/statements")
@roles_required(Role.FINANCE)
def statements():
    if "year" not in request.args:
        return _statements_page(_default_year())
    form = StatementYearForm(request.args)
    return _statements_page(form.year.data if form.validate() else None, year_form=form)


@bp.get("/staff/finance/statements/preview")
@roles_required(Role.FINANCE)
def statement_preview():
    """One donor's statement as the email would carry it, to check before sending."""
    form = StatementPreviewForm(request.args)
    if form.validate():
        try:
            supporter_id = find_donor(form.donor.data)
            body = statement_pdf(form.year.data, supporter_id, _settings(), utcnow())
        except FinanceError as exc:
            field = form.donor if exc.field == "donor" else form.year
            field.errors = [*field.errors, exc.message]
        else:
            return Response(body, mimetype="application/pdf", headers={
                "Content-Disposition": f'attachment; filename="giving-statement-'
                                       f'{form.year.data}-{supporter_id}.pdf"'})
    year = form.year.data if not form.year.errors else _default_year()
    return _statements_page(year, preview=form)


@bp.post("/staff/finance/statements/send")
@roles_required(Role.FINANCE)
def statements_send():
    """Queue and deliver statements batch by batch for as long as one request may take
    (``STATEMENTS_SECONDS_PER_REQUEST``), then come back to the page, which continues with
    the next request. Each donor's statement has its own dedupe key, so a repeated or
    concurrent request emails nobody twice."""
    form = StatementSendForm()
    year = form.year_value()
    if not form.validate_on_submit() or year is None:
        if year is None:
            form.form_errors.append("Choose the year again: it was missing or not a year.")
        return _statements_page(year or _default_year(), send=form)
    budget = current_app.config.get("STATEMENTS_SECONDS_PER_REQUEST", 10)
    started = time.monotonic()
    report = None
    failed = 0
    batches = queue_statements(year, settings=_settings(), now=utcnow(),
                               sender=current_app.config["MAIL_FROM"], batch=STATEMENT_BATCH)
    try:
        for report in batches:
            jobs.commit()
            failed += deliver_batch(report.email_ids)[1]
            # Batches of donors mailed earlier cost two queries: only sending counts.
            if report.email_ids and time.monotonic() - started >= budget:
                break
    except FinanceError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        return _statements_page(year, send=form)
    finally:
        batches.close()
    finished = report is not None and report.done >= report.donors
    actor = _actor()
    audit.record(actor_id=actor.id, actor_label=actor.label,
                 action="statements.send", target_type="statements", target_id=year,
                 after={"year": year, "queued": report.queued if report else 0,
                        "donors": report.donors if report else 0,
                        "checked": report.done if report else 0, "undelivered": failed})
    jobs.commit()
    sent = count_sent(year)
    donors = report.donors if report else 0
    flash(f"{report.queued if report else 0:,} statements emailed just now; {sent:,} of "
          f"{donors:,} donors have theirs." + ("" if finished else " Continuing…")
          + (f" {failed:,} could not be delivered yet and stay queued." if failed else ""),
          "error" if failed else "success")
    args = {"year": year} if finished else {"year": year, "continue": 1}
    return redirect(url_for("finance.statements", **args), 303)
