"""Finance pages: receipt PDFs (a supporter's own; any, for finance staff), and for finance staff
offline gifts, year-end statements, gift exports and the reconciliation of a period."""

import tempfile
from collections.abc import Iterator
from datetime import date

from babel.dates import format_date
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from app import audit, jobs
from app.audit import Actor
from app.campaigns.models import Campaign
from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError, campaign_by_slug, make_period
from app.finance.documents import DocumentSettings, get_receipt, receipt_filename, receipt_pdf
from app.finance.exports import ExportFilter, export_filter, iter_csv, write_xlsx
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
from app.finance.reconciliation import Line, Reconciliation, reconcile
from app.finance.report_forms import METHODS, ExportForm, PeriodForm
from app.finance.statements import (
    corrections_due,
    count_donors,
    count_sent,
    find_donor,
    send_corrections,
    send_statements,
    statement_pdf,
    year_ended,
)
from app.mail import current_mailer
from app.staff.forms import ButtonForm
from app.staff.models import Role
from app.staff.roles import roles_required, staff_pages
from app.templating import org_zone

bp = staff_pages(Blueprint("finance", __name__))


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
            reverse_offline_gift(gift_id, reason=form.reason.data, actor=_actor(),
                                 zone=org_zone(), now=utcnow())
        except FinanceError as exc:
            if exc.field == "gift":
                abort(404)
            _show_error(form, exc)
        else:
            jobs.commit()
            flash("Gift reversed: a refund is recorded and its receipt is void.", "success")
            return redirect(url_for("finance.offline_gift", gift_id=gift_id), 303)
    return _gift_page(gift_id, reversal=form)


# -- exports and reconciliation ------------------------------------------------------------------

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _campaign_titles() -> dict[str, str]:
    """Every campaign, newest first: slug -> title."""
    return dict(db.session.execute(select(Campaign.slug, Campaign.title).order_by(
        Campaign.starts_at.desc(), Campaign.id.desc())).all())


def _today() -> date:
    return utcnow().astimezone(org_zone()).date()


def _export_form(*, download: bool = False) -> ExportForm:
    """The export's filters from the query; the form (not a download) offers this month."""
    return ExportForm(request.args, campaigns=_campaign_titles(),
                      today=None if download else _today(),
                      currencies=tuple(current_app.config["CURRENCIES"]))


@bp.get("/staff/finance/exports")
@roles_required(Role.FINANCE)
def exports():
    """The export form: this month by default, or prefilled from the query (the
    reconciliation page links here with a figure's period and filters). It submits to
    ``export_download`` by GET: ``app.finance.report_forms`` says why."""
    return render_template("finance/exports.html", form=_export_form())


@bp.get("/staff/finance/exports/download")
@roles_required(Role.FINANCE)
def export_download():
    """The export as a file. Bad input is the form again with the message beside its field
    (422), and no file.

    CSV streams: ``iter_csv`` reads the rows through a server-side cursor (PostgreSQL; SQLite
    steps its own cursor) and ``stream_with_context`` keeps the request, its database session
    and that transaction open until the last row is sent, so memory stays flat however many
    rows. XLSX is a zip, which openpyxl can only finish at the end: ``write_xlsx`` (write-only
    mode, rows go to disk as they come) writes it to a temporary file, which is sent from there
    and deleted once sent. A period without rows is a file with the header row only, as an
    accounting import expects.
    """
    form = _export_form(download=True)
    if form.validate():
        try:
            period = make_period(*form.period_args(), org_zone())
            return _export_file(export_filter(period, **form.filters()), form.format.data)
        except FinanceError as exc:
            form.add_error(exc.field, exc.message)
    return render_template("finance/exports.html", form=form), 422


def _export_file(flt: ExportFilter, fmt: str) -> Response:
    name = f"gifts-{flt.period.first.isoformat()}-{flt.period.last.isoformat()}.{fmt}"
    if fmt == "xlsx":
        out = tempfile.TemporaryFile(prefix="newsfund-export-", suffix=".xlsx")
        try:
            write_xlsx(flt, out)  # too many rows: a FinanceError before any byte is sent
            out.seek(0)
        except BaseException:
            out.close()
            raise
        response = send_file(out, mimetype=XLSX_MIMETYPE)
    else:
        chunks = iter_csv(flt)
        # The query runs here, in the view: a database error is an error page, not a cut-off
        # file.
        head = next(chunks)
        response = Response(stream_with_context(_then(head, chunks)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _then(head: str, rest: Iterator[str]) -> Iterator[str]:
    yield head
    yield from rest  # closing this generator closes ``rest``, and so the cursor


@bp.get("/staff/finance/reconciliation")
@roles_required(Role.FINANCE)
def reconciliation():
    """Gross, provider fees, refunds, disputes and net of a period (this month by default), by
    currency, campaign and payment method, and per payout arriving in it. Every figure links
    to the download of the export rows whose column sums to it, and each line to the export
    form prefilled the same way."""
    campaigns = _campaign_titles()
    form = PeriodForm(request.args, campaigns=campaigns, today=_today())
    result = scope = None
    if form.validate():
        try:
            period = make_period(*form.period_args(), org_zone())
            campaign = campaign_by_slug(form.campaign.data) if form.campaign.data else None
        except FinanceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            result = reconcile(period, campaign_id=campaign.id if campaign else None)
            scope = {"campaign": campaign.slug} if campaign else {}
    return render_template("finance/reconciliation.html", form=form, result=result,
                           titles=campaigns, methods=METHODS, day=_day_text,
                           rows_url=_rows_url(result, scope)), 422 if form.errors else 200


def _day_text(day: date) -> str:
    return format_date(day, "long", locale=current_app.config["ORG_LOCALE"])


def _rows_url(result: Reconciliation | None, scope: dict | None):
    """``rows_url(line, fmt="csv", form=False)``: the export of exactly the rows behind a
    line's figures: the period (a payout's: the days of its rows), the page's campaign if one
    was chosen, the line's filters."""

    def rows_url(line: Line, fmt: str = "csv", form: bool = False) -> str:
        # A payout's rows fall on the days of its own span, not the period's.
        first, last = line.span or (result.period.first, result.period.last)
        args = {"from": first.isoformat(), "to": last.isoformat(),
                **scope, **line.filters, "format": fmt}
        return url_for("finance.exports" if form else "finance.export_download", **args)

    return rows_url


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
    ended = year is None or year_ended(year, zone=org_zone(), now=utcnow())
    status = 422 if any(f.errors or f.form_errors for f in (year_form, preview, send)) else 200
    return render_template("finance/statements.html", year=year, donors=donors, sent=sent,
                           problem=problem, year_form=year_form, preview=preview, send=send,
                           running=running, ended=ended,
                           forced=running and request.args.get("force") == "1",
                           corrections=len(corrections_due(year)) if sent else 0,
                           correct_form=ButtonForm()), status


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
    try:
        run = send_statements(
            year, settings=_settings(), now=utcnow(), mailer=current_mailer(),
            commit=jobs.commit, batch=STATEMENT_BATCH, zone=org_zone(), force=form.force.data,
            seconds=current_app.config.get("STATEMENTS_SECONDS_PER_REQUEST", 10))
    except FinanceError as exc:
        db.session.rollback()
        if exc.field == "force":
            form.force.errors = [*form.force.errors, exc.message]
        else:
            form.form_errors.append(exc.message)
        return _statements_page(year, send=form)
    report, failed, finished = run.report, run.failed, run.finished
    actor = _actor()
    audit.record(actor_id=actor.id, actor_label=actor.label,
                 action="statements.send", target_type="statements", target_id=year,
                 after={"year": year, "queued": report.queued if report else 0,
                        "donors": report.donors if report else 0,
                        "checked": report.done if report else 0, "undelivered": failed,
                        "forced": bool(form.force.data)})
    jobs.commit()
    sent = count_sent(year)
    donors = report.donors if report else 0
    flash(f"{report.queued if report else 0:,} statements emailed just now; {sent:,} of "
          f"{donors:,} donors have theirs." + ("" if finished else " Continuing…")
          + (f" {failed:,} could not be delivered yet and stay queued." if failed else ""),
          "error" if failed else "success")
    args = {"year": year} if finished else {"year": year, "continue": 1}
    if form.force.data and not finished:
        args["force"] = 1
    return redirect(url_for("finance.statements", **args), 303)


@bp.post("/staff/finance/statements/<int:year>/corrections")
@roles_required(Role.FINANCE)
def statements_correct(year: int):
    """Email a corrected statement to each donor whose receipted gifts of the year changed
    after theirs went out; each once."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    queued, failed = send_corrections(year, settings=_settings(), now=utcnow(),
                                      mailer=current_mailer(),
                                      commit=jobs.commit)
    if queued:  # nothing sent, nothing to record
        actor = _actor()
        audit.record(actor_id=actor.id, actor_label=actor.label, action="statements.correct",
                     target_type="statements", target_id=year,
                     after={"year": year, "queued": queued, "undelivered": failed})
        jobs.commit()
    flash(f"{queued:,} corrected statements emailed just now."
          + (f" {failed:,} could not be delivered yet and stay queued." if failed else ""),
          "error" if failed else "success")
    return redirect(url_for("finance.statements", year=year), 303)
