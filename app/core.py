"""What belongs to no feature: the health check, the favicon, the headers every response
carries, and the session cookie's signer."""

from flask import Blueprint, Flask, current_app, jsonify, send_from_directory
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import jobs
from app.extensions import csrf, db, limiter

bp = Blueprint("core", __name__)


@bp.get("/healthz")
@limiter.exempt
@csrf.exempt
def healthz():
    """200 while the database answers, 503 when it does not. With a job queue (REDIS_URL) its
    state is reported too; without it the app still takes gifts and stores webhook events
    (applied later by ``flask payments process-pending``), so it is "degraded", not down."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    body = {"status": "ok", "database": "ok"}
    queue = jobs.backend().health()
    if queue is not None:
        body["queue"] = queue
        if queue != "ok":
            body["status"] = "degraded"
    return jsonify(body)


@bp.get("/favicon.ico")
@limiter.exempt
def favicon():
    """The site icon, where browsers and feed readers look for it when a page names none (ours
    name it with ``<link rel="icon">``). Caches may keep it a day."""
    return send_from_directory(current_app.static_folder, "favicon.ico",
                               mimetype="image/vnd.microsoft.icon", max_age=86400)


# Scripts and styles only from this app (no CDN); inline style attributes are allowed for the
# progress bar's width. Forms may redirect to the provider's hosted checkout, so no form-action.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


@bp.after_app_request
def security_headers(response):
    """Each header unless the view set its own."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        if name not in headers:
            headers.add(name, value)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with its signer built once per secret key rather than
    twice a request (reading the cookie and writing it each build one and derive the key)."""

    def __init__(self) -> None:
        self._signers: dict[tuple, object] = {}

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(keys)
        if signer is None:
            signer = self._signers[keys] = super().get_signing_serializer(app)
        return signer
