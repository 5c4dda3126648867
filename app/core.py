"""What belongs to no feature: the health check, the favicon, the headers every response
carries, the session cookie's signer, and how a request's URL and form are read (ids within the
database's range, text that is not UTF-8 or holds control characters refused)."""

import re
from urllib.parse import parse_qsl

import flask
from flask import Blueprint, Flask, current_app, jsonify, request, send_from_directory
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug import formparser
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream
from wtforms.validators import StopValidation, ValidationError

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


# Scripts and styles only from this app's files (no CDN, no inline script, style element or
# style attribute: a progress bar is a <progress> element). Forms may redirect to the
# provider's hosted checkout, so no form-action.
def content_security_policy(frame_ancestors: str = "'none'") -> str:
    """The policy every page gets; only the embeds (``app.embeds``) name who may frame them."""
    return ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; object-src 'none'; base-uri 'self'; "
            f"frame-ancestors {frame_ancestors}")


CONTENT_SECURITY_POLICY = content_security_policy()


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def allow_framing(response, origins) -> None:
    """Let ``origins`` (the embeds' EMBED_ORIGINS) and no one else frame this response: its
    policy's frame-ancestors names them, and it gets no X-Frame-Options, which can name no
    origin. With no origins it stays unframeable like every other page."""
    if origins:
        response.headers["Content-Security-Policy"] = content_security_policy(" ".join(origins))


def framed_by_policy(headers) -> bool:
    """Whether the response's own policy names who may frame it (:func:`allow_framing`)."""
    policy = headers.get("Content-Security-Policy", "")
    return "frame-ancestors" in policy and "frame-ancestors 'none'" not in policy


@bp.after_app_request
def security_headers(response):
    """Each header unless the view set its own. Served over https (``SECURE_COOKIES``), also
    HSTS: browsers then use https only for ``HSTS_MAX_AGE`` seconds (0 sends none)."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        if name not in headers and not (name == "X-Frame-Options" and framed_by_policy(headers)):
            headers.add(name, value)
    config = current_app.config
    if (config["SESSION_COOKIE_SECURE"] and config["HSTS_MAX_AGE"] > 0
            and "Strict-Transport-Security" not in headers):
        value = f"max-age={config['HSTS_MAX_AGE']}"
        if config["HSTS_INCLUDE_SUBDOMAINS"]:
            value += "; includeSubDomains"
        headers["Strict-Transport-Security"] = value
    return response


# -- reading the request -----------------------------------------------------------------------

#: The largest id a route takes: ids are INTEGER columns, 32 bits on PostgreSQL (SQLite's would
#: hold 64, but no id outgrows PostgreSQL's).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route (the app's ``int`` converter): a row id, so a number above
    :data:`MAX_ID` is a 404 like any id that does not exist, rather than an overflow in the
    database driver (a 500)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


#: What werkzeug puts in place of bytes that are not UTF-8 (and, here, so does a urlencoded
#: form): such text was garbled on the way and is refused, never stored.
UNREADABLE = "\ufffd"
#: Characters no one types into a form: the C0 controls but tab, line feed and carriage return,
#: and DEL. NUL ends a string in C and PostgreSQL refuses it in text (a 500 where it reached a
#: query); the others are terminal escapes and the like, never a name or an address.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
UNREADABLE_MESSAGE = ("We could not read some of the characters in this. Please type it "
                      "again.")
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def unreadable(text: str) -> bool:
    """Whether ``text`` arrived garbled (bytes that were not UTF-8) or holds a control
    character: either way it is refused, never stored."""
    return UNREADABLE in text or CONTROL_CHARACTERS.search(text) is not None


class FormDataParser(formparser.FormDataParser):
    """Werkzeug's, except that in a urlencoded form (what browsers send) bytes that are not
    UTF-8 become U+FFFD, as werkzeug already does in a multipart one, rather than their %XX
    escape as if it had been typed: ``%ff%fe%80abc`` would be stored as the text
    "%FF%FE%80abc". U+FFFD can then be refused (:func:`refuse_unreadable_forms`,
    :class:`Readable`)."""

    def parse(self, stream, mimetype, content_length, options=None):
        if mimetype != "application/x-www-form-urlencoded":
            return super().parse(stream, mimetype, content_length, options)
        # The stream is already limited to MAX_CONTENT_LENGTH (413 beyond it).
        body = stream.read().decode("utf-8", "replace")
        fields = parse_qsl(body, keep_blank_values=True, encoding="utf-8", errors="replace")
        return stream, self.cls(fields), self.cls()


class _WholeBodyStream(LimitedStream):
    """A body sent in chunks (no Content-Length), read up to ``limit``: one longer is a 413,
    where werkzeug's stream would stop at the limit and hand on what it read, cut short."""

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data


def accepts_uploads(setting: str):
    """Mark a view that takes a file up to the size the setting ``setting`` names (an import's
    CSV: IMPORT_MAX_BYTES) instead of MAX_CONTENT_LENGTH. A view setting
    ``request.max_content_length`` itself would be too late: the request hooks here read the
    form first."""

    def mark(view):
        view.upload_limit_setting = setting
        return view

    return mark


class Request(flask.Request):
    form_data_parser_class = FormDataParser

    @property
    def max_content_length(self) -> int | None:
        """Flask's (MAX_CONTENT_LENGTH, or what the view set), or the upload limit of a view
        marked with :func:`accepts_uploads`."""
        if self._max_content_length is None and self.url_rule is not None:
            view = current_app.view_functions.get(self.url_rule.endpoint)
            setting = getattr(view, "upload_limit_setting", None)
            if setting is not None:
                return current_app.config[setting]
        return flask.Request.max_content_length.fget(self)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    @cached_property
    def stream(self):
        """The body, limited to ``max_content_length`` (MAX_CONTENT_LENGTH, or the view's):
        413 on a Content-Length above it before anything is read, or, for a body sent in
        chunks, once more than that has arrived."""
        limit = self.max_content_length
        if (limit is not None and self.content_length is None and not self.shallow
                and "wsgi.input_terminated" in self.environ):
            return _WholeBodyStream(self.environ["wsgi.input"], limit, is_max=True)
        return super().stream


class UnreadableText(BadRequest):
    """A form sent text that is not UTF-8, or control characters, to a view that does not
    check it itself."""

    description = ("Some of the text in the form could not be read: it was not sent as UTF-8, "
                   "or held characters that are not text. Go back, type it again and send the "
                   "form again. Nothing was saved.")


def checks_unreadable_text(view):
    """Mark a view whose form refuses unreadable text (:func:`unreadable`) beside each field
    (with :class:`Readable`), so that :func:`refuse_unreadable_forms` lets its requests
    through."""
    view.checks_unreadable_text = True
    return view


@bp.before_app_request
def refuse_unreadable_forms():
    """A form with text that is not UTF-8 or holds a control character (:func:`unreadable`)
    gets a 400 page saying so, with nothing saved, unless its view shows that beside the fields
    (:func:`checks_unreadable_text`). Every field counts, those the view does not read too."""
    if request.mimetype not in FORM_TYPES:
        return
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, "checks_unreadable_text", False):
        return
    if any(unreadable(value) for _, value in request.form.items(multi=True)):
        raise UnreadableText()


@bp.before_app_request
def refuse_unreadable_urls():
    """No page's address holds a control character (:data:`CONTROL_CHARACTERS`): such a path
    is a 404 and such a query a 400, before a view looks anything up by it (PostgreSQL refuses
    NUL in text: a 500 where it reached a query)."""
    if CONTROL_CHARACTERS.search(request.path):
        raise NotFound()
    if any(CONTROL_CHARACTERS.search(value) for _, value in request.args.items(multi=True)):
        raise BadRequest()


class Readable:
    """A form field's first validator: refuse text that arrived as bytes that are not UTF-8
    (see :class:`FormDataParser`) or that holds a control character, with a message beside the
    field."""

    def __init__(self, message: str = UNREADABLE_MESSAGE) -> None:
        self.message = message

    def __call__(self, form, field) -> None:
        if isinstance(field.data, str) and unreadable(field.data):
            raise StopValidation(self.message)


#: The years a date typed into a form may name. Beyond them, moving a date between the
#: organisation's zone and UTC, or to the next day, runs off the calendar's ends (a 500), and a
#: typo ("0026-03-05") would be taken as a date.
YEARS = (1900, 2999)


def within_years(form, field) -> None:
    """A date or date-time field's validator: refuse a year outside :data:`YEARS`."""
    if field.data is not None and not YEARS[0] <= field.data.year <= YEARS[1]:
        raise ValidationError(f"Enter a date between the years {YEARS[0]} and {YEARS[1]}.")


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
