"""Signing out ends the sign-in on the server (issue 11 item 2).

The probe copied a signed-in browser's session cookie and its remember cookie into another
browser, signed out in the first, and the copies still opened ``/account``. Here each browser is
a test client that signs in as a browser does (the form's own CSRF token, read from the page),
cookies are copied by value, and the copies must be sent to the sign-in page once the sign-in
they carry has ended: by signing out, by "sign out everywhere", by a reset, a password change or
an address change. Other browsers of the account stay signed in when one signs out.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.accounts.auth import session_max_age
from app.accounts.models import AccountSession
from app.accounts.sessions import open_session, session_supporter
from app.audit import Actor
from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from app.staff.roles import grant_role
from tests.support.accounts import (
    PASSWORD,
    RequestScopedClient,
    flashes,
    link_in,
    mail_to,
    make_account,
    post_form,
    sign_in,
    sign_out,
)

HOST = "donate.test"
SESSION, REMEMBER = "session", "remember_token"
NEW_PASSWORD = "a fresh olive grove at dawn"


@pytest.fixture
def browser(app):
    """``browser()``: a new browser of its own (a test client with its own cookies)."""
    app.test_client_class = RequestScopedClient
    return app.test_client


def copy_of(source, *names: str, into):
    """``into`` with the values of ``source``'s cookies ``names``, as a thief would paste them."""
    for name in names:
        cookie = source.get_cookie(name, domain=HOST)
        assert cookie is not None, f"{name} was never set"
        into.set_cookie(name, cookie.value, domain=HOST)
    return into


def is_signed_in(client, path: str = "/account") -> bool:
    response = client.get(path)
    if response.status_code == 200:
        return True
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].startswith("/account/signin?next="), \
        response.headers["Location"]
    return False


def open_sign_ins() -> int:
    return db.session.scalar(select(func.count()).select_from(AccountSession))


@pytest.mark.parametrize("cookies", [(SESSION,), (REMEMBER,), (SESSION, REMEMBER)],
                         ids=["session", "remember", "both"])
def test_a_copied_cookie_stops_working_once_its_browser_signs_out(app, browser, cookies):
    make_account()
    mine = browser()
    sign_in(mine, remember="y")
    stolen = copy_of(mine, *cookies, into=browser())
    assert is_signed_in(stolen)  # the copy works while the sign-in is open

    sign_out(mine)

    assert not is_signed_in(mine)
    assert not is_signed_in(stolen)
    # Not for a moment later either: no request brings the sign-in back.
    assert not is_signed_in(stolen, "/account/profile")


def test_signing_out_in_one_browser_leaves_the_others_signed_in(app, browser):
    make_account()
    laptop, phone = browser(), browser()
    sign_in(laptop)
    sign_in(phone, remember="y")
    assert open_sign_ins() == 2

    sign_out(laptop)

    assert not is_signed_in(laptop)
    assert is_signed_in(phone)
    assert is_signed_in(copy_of(phone, REMEMBER, into=browser()))
    assert open_sign_ins() == 1


def test_signing_in_again_in_a_browser_ends_its_previous_sign_in(app, browser):
    make_account()
    make_account("dana@example.org", name="Dana Cohen")
    shared = browser()
    sign_in(shared, remember="y")
    before = copy_of(shared, SESSION, REMEMBER, into=browser())

    sign_in(shared, "dana@example.org")

    assert "Hello, Dana" in shared.get("/account").get_data(as_text=True)
    assert not is_signed_in(before)
    assert open_sign_ins() == 1


def test_sign_out_everywhere_ends_every_browser_this_one_included(app, browser):
    make_account()
    laptop, phone = browser(), browser()
    sign_in(laptop)
    sign_in(phone, remember="y")
    phone_copy = copy_of(phone, SESSION, REMEMBER, into=browser())
    page = laptop.get("/account").get_data(as_text=True)
    assert "Sign out everywhere" in page and "this one included" in page

    done = post_form(laptop, "/account/signout/everywhere", page="/account")

    assert (done.status_code, done.headers["Location"]) == (303, "/account/signin")
    assert "You are signed out everywhere: on every device and browser, this one included." \
        in flashes(laptop.get("/account/signin"))
    for client in (laptop, phone, phone_copy):
        assert not is_signed_in(client)
    assert open_sign_ins() == 0
    sign_in(laptop)  # the account itself is fine
    assert is_signed_in(laptop)


def test_sign_out_everywhere_needs_a_sign_in_and_its_token(app, browser):
    make_account()
    laptop = browser()
    anonymous = post_form(laptop, "/account/signout/everywhere", page="/account/signin")
    assert anonymous.headers["Location"].startswith("/account/signin?next=")
    sign_in(laptop)
    assert laptop.get("/account/signout/everywhere").status_code == 405
    assert laptop.post("/account/signout/everywhere").status_code == 400
    assert laptop.post("/account/signout/everywhere",
                       data={"csrf_token": "forged"}).status_code == 400
    assert is_signed_in(laptop) and open_sign_ins() == 1


def test_a_reset_ends_every_sign_in_and_signs_in_the_browser_that_reset(app, browser, outbox):
    make_account()
    laptop, phone = browser(), browser()
    sign_in(laptop, remember="y")
    laptop_copy = copy_of(laptop, SESSION, REMEMBER, into=browser())
    post_form(phone, "/account/reset", email="noa@example.org")
    link = link_in(mail_to(outbox, "noa@example.org")[-1], "/account/reset/")

    assert post_form(phone, link, password=NEW_PASSWORD).status_code == 303

    assert not is_signed_in(laptop)
    assert not is_signed_in(laptop_copy)
    assert is_signed_in(phone)
    assert open_sign_ins() == 1


def test_a_password_change_ends_the_other_sign_ins_and_keeps_this_one(app, browser):
    make_account()
    laptop, phone = browser(), browser()
    sign_in(laptop, remember="y")
    sign_in(phone, remember="y")
    phone_copy = copy_of(phone, REMEMBER, into=browser())

    changed = post_form(laptop, "/account/profile/password", page="/account/profile",
                        current_password=PASSWORD, new_password=NEW_PASSWORD)

    assert changed.status_code == 303
    assert is_signed_in(laptop)
    assert is_signed_in(copy_of(laptop, REMEMBER, into=browser()))  # its new remember cookie
    assert not is_signed_in(phone)
    assert not is_signed_in(phone_copy)


def test_an_address_change_ends_every_other_sign_in(app, browser, outbox):
    make_account()
    laptop, phone = browser(), browser()
    sign_in(laptop)
    sign_in(phone, remember="y")
    phone_copy = copy_of(phone, SESSION, REMEMBER, into=browser())
    asked = post_form(laptop, "/account/profile/email", page="/account/profile",
                      new_email="noa.levi@example.net", password=PASSWORD)
    assert asked.status_code == 303
    link = link_in(mail_to(outbox, "noa.levi@example.net")[-1], "/account/email/")

    assert post_form(laptop, link).status_code == 303

    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(phone_copy)


def test_a_staff_member_signing_out_ends_the_staff_pages_for_a_copy(app, browser):
    """Staff sign in through the same accounts, so the same rule holds for /staff."""
    person = make_account("editor@levantwire.example")
    grant_role(person, Role.FUNDRAISER, actor=Actor(id=None, label="test"))
    db.session.commit()
    desk = browser()
    sign_in(desk, "editor@levantwire.example", remember="y")
    stolen = copy_of(desk, SESSION, REMEMBER, into=browser())
    assert stolen.get("/staff/campaigns").status_code == 200

    sign_out(desk)

    assert not is_signed_in(stolen, "/staff/campaigns")


def test_a_sign_in_ends_on_the_server_after_the_remember_days(app, browser):
    make_account()
    laptop = browser()
    sign_in(laptop, remember="y")
    max_age = session_max_age(app.config)
    db.session.execute(update(AccountSession).values(
        created_at=utcnow() - max_age + timedelta(minutes=1)))
    db.session.commit()
    assert is_signed_in(laptop)  # a minute left

    db.session.execute(update(AccountSession).values(
        created_at=utcnow() - max_age - timedelta(seconds=1)))
    db.session.commit()

    assert not is_signed_in(laptop)
    assert not is_signed_in(copy_of(laptop, REMEMBER, into=browser()))
    # The row is gone at the next sign-in, anyone's.
    make_account("yusuf@example.org")
    sign_in(browser(), "yusuf@example.org")
    assert open_sign_ins() == 1


def test_a_cookie_id_that_names_no_open_sign_in_signs_no_one_in(app, browser):
    """Ids in the old form ``<id>:<session_version>``, another supporter's id with a real key,
    and made-up keys."""
    noa = make_account()
    other = make_account("yusuf@example.org")
    now, max_age = utcnow(), session_max_age(app.config)
    login_id = open_session(noa, now=now, max_age=max_age)
    db.session.commit()
    key = login_id.partition(":")[2]
    assert session_supporter(login_id, now=now, max_age=max_age) is noa
    for forged in (f"{noa.id}:0", f"{noa.id}", f"{other.id}:{key}", f"0{noa.id}:{key}",
                   f"{noa.id}:{key}x", f"{noa.id}:", ":", "", f"{'9' * 40}:{key}"):
        assert session_supporter(forged, now=now, max_age=max_age) is None, forged
        client = browser()
        with client.session_transaction() as session:
            session["_user_id"] = forged
        assert not is_signed_in(client)


def test_sign_ins_live_in_the_database_shared_by_every_process(app, make_app, database_url):
    """Two app processes (gunicorn workers) on one database: signed in through one, the copy
    works on the other until the first signs out."""
    make_account()
    worker_a = app
    worker_b = make_app(database_url)
    for worker in (worker_a, worker_b):
        worker.test_client_class = RequestScopedClient
    mine = worker_a.test_client()
    sign_in(mine, remember="y")
    on_b = copy_of(mine, SESSION, REMEMBER, into=worker_b.test_client())
    assert is_signed_in(on_b)

    sign_out(mine)

    assert not is_signed_in(on_b)
