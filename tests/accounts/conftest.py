"""The account tests' client: a fresh ``g`` for every request, as in production
(``tests.support.accounts.RequestScopedClient``)."""

from __future__ import annotations

import pytest

from tests.support.accounts import RequestScopedClient


@pytest.fixture
def client(app):
    app.test_client_class = RequestScopedClient
    return app.test_client()
