"""Staff members for the tests: a verified supporter holding roles, signed in without the sign-in
page, and the CSRF token a staff page's form would carry. The fixtures that use them (``client``,
``as_role``) are in ``tests/staff/conftest.py``."""

from __future__ import annotations

import secrets

from flask_login.utils import _create_identifier
from itsdangerous import URLSafeTimedSerializer

from app.accounts.services import get_or_create_supporter
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from app.staff.roles import grant_role
from tests.support.accounts import open_sign_in


def make_person(email: str, *, roles: tuple[Role, ...] = (), name: str = "Staff Member"):
    """A verified supporter holding ``roles``, committed like real data."""
    person = get_or_create_supporter(email, name)
    person.email_verified_at = utcnow()
    db.session.flush()
    for role in roles:
        grant_role(person, role, actor=Actor(id=None, label="test"))
    db.session.commit()
    return person


def sign_in_as(client, person) -> None:
    """What a successful sign-in leaves in the session and on the server (the sign-in itself is
    tested in tests/accounts)."""
    with client.application.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()  # the same address and browser as the client's
    login_id = open_sign_in(person)
    with client.session_transaction() as session:
        session["_user_id"] = login_id
        session["_fresh"] = True
        session["_id"] = identifier


def csrf_token(client) -> str:
    """A valid CSRF token for the client's session, as a page's form would carry (Flask-WTF
    keeps the raw token in the session and signs it into the form)."""
    with client.session_transaction() as session:
        raw = session.setdefault("csrf_token", secrets.token_hex(20))
    app = client.application
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)
