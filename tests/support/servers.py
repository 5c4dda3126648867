"""Requests in flight on a real server: for tests that talk to the app over HTTP.

A response reaches the client before the server is done with it, and that is when the app does
the work it keeps for after the response (account mail: ``app.jobs.AfterResponse``). A test
that reads what that work leaves (mail in the outbox) first waits, with :meth:`InFlight.wait`,
until the server is done with every response.
"""

from __future__ import annotations

import threading

from app.jobs import ThenRun


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

