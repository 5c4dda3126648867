"""Receipt PDFs for download: a supporter's own, and any receipt for finance staff."""

from flask import Blueprint, Response, abort, current_app
from flask_login import current_user, login_required

from app.finance.common import FinanceError
from app.finance.documents import DocumentSettings, get_receipt, receipt_filename, receipt_pdf
from app.staff.models import Role
from app.staff.roles import current_roles, roles_required

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
