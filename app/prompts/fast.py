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
from werkzeug.wsgi import get_host

from app import edge, logs, metrics
from app.core import security_headers
from app.db import utcnow
from app.prompts.views import (
    anonymous_decision,
    decision_answer,
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

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") != PATH or environ["REQUEST_METHOD"] != "GET"
                or any(name in environ for name in _TO_FLASK)):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        response = self._answer(environ)
        if response is None:
            return self.wsgi_app(environ, start_response)
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID", "")
                                          if self.app.config["TRUSTED_PROXIES"] else "")
        response.headers["X-Request-ID"] = request_id
        seconds = time.perf_counter() - started
        logs.log_request("GET", ROUTE, response.status_code, seconds, request_id=request_id)
        metrics.count_request(ROUTE, "GET", response.status_code, seconds)
        return response(environ, start_response)

    def _answer(self, environ):
        """The view's answer, or None for one Flask must give (also when this one failed: the
        database gone, say; Flask then answers as it answers any failure)."""
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
            response = app.json.response(answer)
            anonymous_decision(response)
            prompt_answer_headers(response, environ.get("HTTP_ORIGIN"))
            response.vary.add("Cookie")  # as Flask's session adds: a reader's own differs
            security_headers(response)
            edge.keep_answer(environ, app.config["CAMPAIGN_PAGE_RECHECK_SECONDS"], ROUTE)
            return response.make_conditional(environ)


def init_app(app: Flask) -> None:
    """Inside ProxyFix (it needs the host and scheme the proxy states), outside the rest."""
    app.wsgi_app = FastDecision(app.wsgi_app, app)
