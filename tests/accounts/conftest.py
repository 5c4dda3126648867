"""The account tests' client: a fresh ``g`` for every request, as in production.

The ``app`` fixture keeps an application context open for the whole test, and Flask reuses it
for the test client's requests, so ``g`` would carry over from one request to the next. Flask-Login
keeps the signed-in user there, and Flask-WTF the CSRF token: a second request would see the first
one's user even after its cookie is gone. Clearing ``g`` restores per-request behaviour.
"""

from __future__ import annotations

import pytest
from flask import g
from flask.testing import FlaskClient


class RequestScopedClient(FlaskClient):
    def open(self, *args, **kwargs):
        vars(g).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = RequestScopedClient
    return app.test_client()
