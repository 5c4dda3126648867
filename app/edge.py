"""The embeds' answers kept in each process for a moment, served ahead of Flask.

Every article view on the newsroom's site asks for the same few things (``/embed.js``, the
campaign box of that article, the sign-up box...). A view whose answer is the same for every
reader who sends the same request marks it with :func:`keep` (for how many seconds); this
middleware, the outermost layer of the app, then keeps the answer as it was sent and serves it
to the next identical request without entering Flask: no routing, no session, no hooks, no
query. It still does what every answer of the app does: one log line (the route, status,
duration, a request id), the request counters of ``/metrics``, the ``X-Request-ID`` header, and
a ``304`` to an ``If-None-Match`` naming the answer's ``ETag``.

"Identical" means the same path and query, the same host and scheme (also as a trusted proxy
states them), and the same value of each request header the answer varies on (``Vary``: only
``Origin``, ``Sec-GPC`` and ``DNT`` may be named, and ``Cookie``; an answer that varies on
anything else is not kept). Only ``GET`` requests with no ``Cookie`` and no ``Authorization``
header are served or kept, and only a ``200`` that sets no cookie, so nothing a reader's own
session shows is ever shared. What a staff member changes (a campaign's text, a prompt's
copy) shows once the kept answer's seconds are over; each view keeps its answer no longer than
browsers and shared caches may (its ``Cache-Control``).

``EDGE_CACHE`` (on by default) switches it off; ``EDGE_CACHE_ENTRIES`` bounds the answers each
process keeps (least recently used dropped first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, request

from app import logs, metrics
from app.lru import LRU

_KEEP = "newsfund.edge.keep"
#: The request headers a kept answer may vary on, as WSGI names them.
VARIES_ON = {"origin": "HTTP_ORIGIN", "sec-gpc": "HTTP_SEC_GPC", "dnt": "HTTP_DNT"}
#: What decides the host, scheme and path a request names (with ProxyFix, the proxy's headers).
_ADDRESS = ("PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "HTTP_HOST", "wsgi.url_scheme",
            "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
            "HTTP_X_FORWARDED_PREFIX")


def keep(seconds: float) -> None:
    """Let the edge keep this request's answer for ``seconds`` and serve it to identical
    requests (see the module). Only for an answer that is the same for every reader."""
    if seconds > 0:
        request.environ[_KEEP] = (seconds, logs.route())


@dataclass(frozen=True)
class Kept:
    expires: float
    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str | None
    route: str


class EdgeCache:
    """WSGI middleware: serves and keeps what views marked with :func:`keep`."""

    def __init__(self, wsgi_app, *, entries: int, trusted_proxies: int,
                 clock=time.monotonic):
        self.wsgi_app = wsgi_app
        self.trusted_proxies = trusted_proxies
        self.clock = clock
        self._kept = LRU(entries)

    def __call__(self, environ, start_response):
        if (environ["REQUEST_METHOD"] != "GET" or "HTTP_COOKIE" in environ
                or "HTTP_AUTHORIZATION" in environ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        key = tuple(environ.get(name) for name in _ADDRESS)
        variants = key + tuple(environ.get(name) for name in VARIES_ON.values())
        kept = self._kept.get(variants)
        if kept is not None and kept.expires > self.clock():
            return self._serve(kept, environ, start_response, started)
        sent: list = []

        def capture(status, headers, exc_info=None):
            sent[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, capture)
        wanted = environ.get(_KEEP)
        if wanted is None or not sent or not _shareable(sent[0], sent[1]):
            return body
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        seconds, route = wanted
        headers = tuple((name, value) for name, value in sent[1]
                        if name.lower() != "x-request-id")
        etag = next((value for name, value in headers if name.lower() == "etag"), None)
        self._kept.put(variants, Kept(self.clock() + seconds, sent[0], headers, data, etag,
                                 route or "(no route)"))
        return [data]

    def _serve(self, kept: Kept, environ, start_response, started: float):
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID", "")
                                          if self.trusted_proxies else "")
        headers = [*kept.headers, ("X-Request-ID", request_id)]
        status, body = kept.status, [kept.body]
        if kept.etag is not None and _matches(environ.get("HTTP_IF_NONE_MATCH"), kept.etag):
            status, body = "304 NOT MODIFIED", []
            headers = [(n, v) for n, v in headers
                       if n.lower() not in ("content-length", "content-type")]
        code = int(status.split(" ", 1)[0])
        seconds = time.perf_counter() - started
        logs.log_request("GET", kept.route, code, seconds, request_id=request_id)
        metrics.count_request(kept.route, "GET", code, seconds)
        start_response(status, headers)
        return body


def _shareable(status: str, headers) -> bool:
    """A 200 that sets no cookie and varies only on the headers the key holds, or on
    ``Cookie`` (kept answers are only for requests that send none)."""
    if not status.startswith("200"):
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            return False
        if lowered == "vary" and any(part.strip().lower() not in (*VARIES_ON, "cookie")
                                     for part in value.split(",") if part.strip()):
            return False
    return True


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` names ``etag`` (compared weakly, as RFC 9110 says for
    it) or is ``*``."""
    if not if_none_match:
        return False
    tags = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def init_app(app: Flask) -> None:
    """The outermost layer of the app (before ProxyFix: its headers are part of the key)."""
    if app.config["EDGE_CACHE"]:
        app.wsgi_app = EdgeCache(app.wsgi_app, entries=app.config["EDGE_CACHE_ENTRIES"],
                                 trusted_proxies=app.config["TRUSTED_PROXIES"])
