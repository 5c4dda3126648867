"""Staff tests: a request-scoped client (as in the account tests; Flask-Login and the role cache
live in ``g``) and staff members signed in by role."""

from __future__ import annotations

import pytest

from app.staff.models import Role
from tests.support.accounts import RequestScopedClient
from tests.support.staff import make_person, sign_in_as


@pytest.fixture
def client(app):
    app.test_client_class = RequestScopedClient
    return app.test_client()


@pytest.fixture
def as_role(client):
    """``as_role("fundraiser")`` signs the client in as a new staff member with that role
    (``None``: a plain supporter) and returns them."""

    def sign_in(role: str | None, email: str | None = None):
        roles = (Role(role),) if role else ()
        person = make_person(email or f"{role or 'reader'}@levantwire.example", roles=roles)
        sign_in_as(client, person)
        return person

    return sign_in
