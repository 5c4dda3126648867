"""A real HTTP server for tests that talk to the app over the wire (:func:`serving`), and the
requests in flight on it (:class:`InFlight`).

A response reaches the client before the server is done with it, and that is when the app does
the work it keeps for after the response (account mail: ``app.jobs.AfterResponse``). A test
that reads what that work leaves (mail in the outbox) first waits, with :meth:`InFlight.wait`,
until the server is done with every response.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.extensions import db
from app.jobs import ThenRun


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr; errors are still logged."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@contextmanager
def serving(app: Flask, wsgi=None) -> Iterator[BaseWSGIServer]:
    """``wsgi`` (default: ``app``; an :class:`InFlight` around it, say) served by Werkzeug on
    127.0.0.1, on a free port, in a thread, until the block ends; then the server stops and
    ``app``'s database connections are closed."""
    try:
        with serving_wsgi(wsgi or app) as server:
            yield server
    finally:
        with app.app_context():
            db.engine.dispose()


@contextmanager
def serving_wsgi(wsgi, host: str = "127.0.0.1") -> Iterator[BaseWSGIServer]:
    """Any WSGI callable served by Werkzeug on ``host`` (another loopback address is another
    site), on a free port, in a thread, until the block ends."""
    server = make_server(host, 0, wsgi, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class InFlight:
    """WSGI middleware counting the requests whose response the server has not finished: taken
    its last chunk, or closed it."""

    def __init__(self, app):
        self.app = app
        self._count = 0
        self._changed = threading.Condition()

    def __call__(self, environ, start_response):
        with self._changed:
            self._count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return ThenRun(body, [self._done])

    def _done(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait(self, timeout: float = 10) -> None:
        """Return once the server is done with every response (its after-response work too)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count == 0, timeout):
                raise AssertionError(f"{self._count} request(s) still open after {timeout} s")

