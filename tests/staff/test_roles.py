"""Roles: the guard, granting and revoking (audited), the admin page and ``flask users``."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.audit import Actor, AuditEntry
from app.extensions import db
from app.staff.models import Role, StaffRole
from app.staff.roles import RoleError, grant_role, revoke_role, roles_of
from tests.support.staff import csrf_token, make_person, sign_in_as


def test_anonymous_is_sent_to_sign_in_and_comes_back(client):
    response = client.get("/staff/campaigns")
    assert response.status_code == 302
    assert "/account/signin?next=" in response.headers["Location"]
    assert "staff" in response.headers["Location"]


def test_a_supporter_without_a_role_is_refused(client):
    sign_in_as(client, make_person("reader@example.org"))
    assert client.get("/staff/").status_code == 403


def test_admin_passes_everywhere_and_finance_sees_no_campaigns(client):
    sign_in_as(client, make_person("fin@levantwire.example", roles=(Role.FINANCE,)))
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/campaigns").status_code == 403
    sign_in_as(client, make_person("boss@levantwire.example", roles=(Role.ADMIN,)))
    for path in ("/staff/", "/staff/campaigns", "/staff/roles", "/staff/audit"):
        assert client.get(path).status_code == 200, path


def test_grant_and_revoke_are_audited_with_before_and_after(app):
    admin = make_person("boss@levantwire.example", roles=(Role.ADMIN,))
    person = make_person("dana@levantwire.example")
    actor = Actor.of(admin)
    assert grant_role(person, Role.FUNDRAISER, actor=actor) is True
    assert grant_role(person, Role.FUNDRAISER, actor=actor) is False  # once
    assert revoke_role(person, Role.FUNDRAISER, actor=actor) is True
    assert roles_of(person.id) == frozenset()
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == "supporter", AuditEntry.target_id == str(person.id))
        .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["role.grant", "role.revoke"]
    assert json.loads(entries[0].before)["roles"] == []
    assert json.loads(entries[0].after)["roles"] == ["fundraiser"]
    assert entries[1].actor_label == "boss@levantwire.example"


def test_the_last_admin_cannot_be_revoked(app):
    admin = make_person("boss@levantwire.example", roles=(Role.ADMIN,))
    with pytest.raises(RoleError):
        revoke_role(admin, Role.ADMIN, actor=Actor.of(admin))


def test_admin_page_grants_and_revokes(client):
    admin = make_person("boss@levantwire.example", roles=(Role.ADMIN,))
    person = make_person("omar@levantwire.example")
    sign_in_as(client, admin)
    response = client.post("/staff/roles", data={"csrf_token": csrf_token(client),
                                                  "email": "Omar@levantwire.example ",
                                                  "role": "finance"})
    assert response.status_code == 303
    assert roles_of(person.id) == {Role.FINANCE}
    page = client.get("/staff/roles").get_data(as_text=True)
    assert "omar@levantwire.example" in page
    grant = db.session.scalar(select(StaffRole).where(StaffRole.supporter_id == person.id))
    assert client.post(f"/staff/roles/{grant.id}/revoke",
                       data={"csrf_token": csrf_token(client)}).status_code == 303
    assert roles_of(person.id) == frozenset()
    log = client.get("/staff/audit?action=role.").get_data(as_text=True)
    assert "role.grant" in log and "role.revoke" in log
    assert "finance" in log


def test_admin_page_refuses_unknown_people_and_forms_without_token(client):
    sign_in_as(client, make_person("boss@levantwire.example", roles=(Role.ADMIN,)))
    response = client.post("/staff/roles", data={"csrf_token": csrf_token(client),
                                                  "email": "nobody@example.org",
                                                  "role": "admin"})
    assert response.status_code == 422
    assert "No supporter has this address" in response.get_data(as_text=True)
    assert client.post("/staff/roles", data={"email": "x@example.org",
                                             "role": "admin"}).status_code == 400


def test_the_audit_log_filters_and_cannot_be_changed(client, app):
    admin = make_person("boss@levantwire.example", roles=(Role.ADMIN,))
    make_person("a@levantwire.example", roles=(Role.FUNDRAISER,))
    sign_in_as(client, admin)
    page = client.get("/staff/audit?target=supporter&actor=test").get_data(as_text=True)
    assert "<code>role.grant</code>" in page
    filtered = client.get("/staff/audit?action=campaign.")
    assert filtered.status_code == 200
    assert "<code>role.grant</code>" not in filtered.get_data(as_text=True)
    # The day after the calendar's last, or a midnight before UTC's first: a 500 before.
    for query in ("until=9999-12-31", "since=0001-01-01"):
        page = client.get(f"/staff/audit?{query}").get_data(as_text=True)
        assert "Enter a date between the years 1900 and 2999." in page, query
    # Read-only: the page has no form that posts, and no route writes to the log.
    assert 'method="post"' not in page.split('class="filter-form"')[1]
    assert not any(r.rule.startswith("/staff/audit") and "POST" in r.methods
                   for r in app.url_map.iter_rules())


def test_cli_creates_a_staff_member_with_a_sign_in_link(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--email", "New.Admin@levantwire.example",
                                 "--role", "admin", "--name", "New Admin"])
    assert result.exit_code == 0, result.output
    assert "new.admin@levantwire.example: admin" in result.output
    assert "/account/link/" in result.output
    from app.accounts.services import find_supporter

    person = find_supporter("new.admin@levantwire.example")
    assert roles_of(person.id) == {Role.ADMIN}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "role.grant"))
    assert entry.actor_label == "cli"
    again = runner.invoke(args=["users", "create", "--email", "new.admin@levantwire.example",
                                "--role", "admin"])
    assert again.exit_code == 0 and "already held" in again.output
    listed = runner.invoke(args=["users", "list"])
    assert "new.admin@levantwire.example" in listed.output


def test_the_cli_sign_in_link_signs_in(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--email", "ops@levantwire.example",
                                 "--role", "fundraiser"])
    path = "/account/link/" + result.output.split("/account/link/")[1].split()[0]
    page = client.get(path)
    assert page.status_code == 200
    response = client.post(path, data={"csrf_token": csrf_token(client)})
    assert response.status_code in (302, 303)
    assert client.get("/staff/campaigns").status_code == 200


@pytest.mark.parametrize("role", [None, "fundraiser", "finance", "admin"])
def test_the_header_links_staff_and_only_staff_to_their_pages(client, as_role, role):
    as_role(role)
    header = client.get("/account/").get_data(as_text=True).split("</header>")[0]
    assert ('href="/staff/">Staff</a>' in header) is (role is not None)
