"""``GET /embed/prompts/decision`` answered without Flask's request machinery.

Every article view of a reader with a ``data-newsfund="prompt"`` box asks for a decision, and
no two readers ask the same question (their own id, view count, prompts seen), so the edge
(``app.edge``) cannot keep it. Through Flask, a decision cost three times what a bare Flask app
costs to answer anything, nearly all of it the app's hooks (session, sign-in, rate limits...)
which a reader who sends no cookie does not need. This middleware answers such a request with
the view's own functions (``decision_answer``, ``anonymous_decision``, the embeds' and
security headers), and does what every answer of the app does: the host check, the log line,
the counters of ``/metrics``, the ``X-Request-ID``, what the edge may keep. Anything else goes
to Flask: a request with a cookie, credentials or ``If-None-Match``, a follow-box reader token
(it needs the database), an address that is not ours, a query that is not UTF-8, a page that is
not on EMBED_ORIGINS (Flask's 400 page). tests/prompts/test_fast_decision.py holds it to the
view's answers, header for header.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.http import generate_etag, http_date, quote_etag
from werkzeug.wsgi import get_host

from app import edge, logs, metrics
from app.core import security_headers
from app.db import utcnow
from app.embeds.views import embed_origins
from app.prompts.views import (
    anonymous_decision,
    decision_answer,
    decision_kept_for,
    known_by_status,
    prompt_answer_headers,
    tracking_allowed_by,
)

log = logging.getLogger(__name__)

PATH = "/embed/prompts/decision"
ROUTE = PATH  # its URL rule, as the log line and the counters name it
#: Requests Flask answers: a reader's cookies or credentials, a conditional request.
_TO_FLASK = ("HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_IF_NONE_MATCH")


class FastDecision:
    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app = wsgi_app
        self.app = app
        #: The headers that do not depend on the body, per what decides them (:meth:`_fixed`).
        self._fixed_headers: dict[tuple, list[tuple[str, str]]] = {}

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") != PATH or environ["REQUEST_METHOD"] != "GET"
                or any(name in environ for name in _TO_FLASK)):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        headers, body = answer
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID", "")
                                          if self.app.config["TRUSTED_PROXIES"] else "")
        headers.append(("X-Request-ID", request_id))
        seconds = time.perf_counter() - started
        logs.log_request("GET", ROUTE, 200, seconds, request_id=request_id)
        metrics.count_request(ROUTE, "GET", 200, seconds)
        start_response("200 OK", headers)
        return [body]

    def _answer(self, environ) -> tuple[list[tuple[str, str]], bytes] | None:
        """The view's answer (its headers and body), or None for one Flask must give (also
        when this one failed: the database gone, say; Flask then answers as it answers any
        failure)."""
        try:
            return self._decide(environ)
        except Exception:
            log.warning("the decision without Flask failed; Flask answers", exc_info=True)
            return None

    def _decide(self, environ):
        app = self.app
        try:
            get_host(environ, app.config["TRUSTED_HOSTS"])
            args: dict[str, str] = {}
            for name, value in parse_qsl(environ.get("QUERY_STRING", ""),
                                         keep_blank_values=True, errors="strict"):
                args.setdefault(name, value)  # the first, as request.args.get gives
        except (SecurityError, UnicodeDecodeError, ValueError):
            return None
        if args.get("reader"):
            return None
        with app.app_context():
            track = tracking_allowed_by(environ.get("HTTP_SEC_GPC"), environ.get("HTTP_DNT"))
            now = utcnow()
            answer = decision_answer(args, track=track, known=known_by_status(args.get("status")),
                                     now=now)
            if answer is None:
                return None
            body = app.json.response(answer).get_data()
            headers = [*self._fixed(environ.get("HTTP_ORIGIN")),
                       ("Content-Length", str(len(body))),
                       ("ETag", quote_etag(generate_etag(body))),  # as add_etag makes it
                       ("Date", http_date())]  # as make_conditional adds it
            edge.keep_answer(environ, decision_kept_for(args), ROUTE)
        return headers, body

    def _fixed(self, origin: str | None) -> list[tuple[str, str]]:
        """The view's headers that do not depend on the body, made by its own functions once
        per what they read: the origin when it is one of EMBED_ORIGINS, EMBED_ORIGINS, and the
        settings ``core.security_headers`` reads (HSTS)."""
        origins = embed_origins()
        config = self.app.config
        key = (origin if origin in origins else None, origins, config["SESSION_COOKIE_SECURE"],
               config["HSTS_MAX_AGE"], config["HSTS_INCLUDE_SUBDOMAINS"])
        fixed = self._fixed_headers.get(key)
        if fixed is None:
            response = self.app.json.response({})
            anonymous_decision(response)
            prompt_answer_headers(response, origin)
            response.vary.add("Cookie")  # as Flask's session adds: a reader's own differs
            security_headers(response)
            fixed = [(name, value) for name, value in response.headers
                     if name not in ("Content-Length", "ETag")]
            if len(self._fixed_headers) < 64:  # a handful of origins; never unbounded
                self._fixed_headers[key] = fixed
        return list(fixed)


def init_app(app: Flask) -> None:
    """Inside ProxyFix (it needs the host and scheme the proxy states), outside the rest."""
    app.wsgi_app = FastDecision(app.wsgi_app, app)
