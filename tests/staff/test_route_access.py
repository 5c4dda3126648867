"""Every route of the app, walked by an anonymous visitor, a supporter and each staff role,
against ``ACCESS``, the one table of who gets in (tests/support/route_access.py, which
tests/security/test_route_fuzz.py walks too). A new route fails
``test_every_route_is_in_the_table`` until its author adds it there.
"""

from __future__ import annotations

import pytest

from app.staff.models import Role
from tests.factories import make_campaign
from tests.support import route_access
from tests.support.route_access import ACCESS, WHO
from tests.support.staff import csrf_token, make_person, sign_in_as

# Values for the URL's variables: a real campaign, made-up tokens and ids (a made-up token is
# the view's own 400/404/410, which still shows the guard let the request through).
SAMPLE = {"slug": "walk-appeal", "token": "made-up-token", "public_id": "made-up",
          "number": "2099-000001",
          "plan_id": 999999, "grant_id": 999999, "supporter_id": 999999, "name": "sandbox",
          "filename": "css/app.css", "action": "pause", "gift_id": 999999,
          "event_id": 999999, "job_id": "made-up-job", "email_id": 999999, "payment_id": 999999,
          "year": 2025, "prompt_id": 999999, "variant": "a",
          "event": "impressions", "campaign_id": 999999, "run_id": 999999}


def _rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint, r.rule))


def test_every_route_is_in_the_table(app):
    missing = sorted({r.endpoint for r in app.url_map.iter_rules()} - set(ACCESS))
    assert not missing, f"add these endpoints to ACCESS in {route_access.__file__}: {missing}"
    stale = sorted(set(ACCESS) - {r.endpoint for r in app.url_map.iter_rules()})
    assert not stale, f"no longer routes, remove from ACCESS: {stale}"


def test_staff_views_declare_their_roles_at_the_decorator(app):
    """The table and the decorators agree: what a staff view allows is what ACCESS says."""
    columns = {"fundraiser": Role.FUNDRAISER, "finance": Role.FINANCE, "admin": Role.ADMIN}
    for endpoint, view in app.view_functions.items():
        if not endpoint.startswith(("staff.", "operations.", "prompt_staff.")):
            continue
        declared = getattr(view, "allowed_roles", None)
        assert declared, f"{endpoint} has no roles_required"
        expected = {role for who, role in columns.items()
                    if ACCESS[endpoint][WHO.index(who)] == "ok"}
        assert {*declared, Role.ADMIN} == expected, endpoint


def outcome(response) -> str:
    location = response.headers.get("Location", "")
    # The guard's redirect names the page to come back to; a view's own redirect to the
    # sign-in page (an emailed link already used, say) does not.
    if response.status_code in (301, 302, 303) and "/account/signin?next=" in location:
        return "signin"
    if response.status_code in (401, 403):
        return "403"
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    return "ok"


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("endpoint", sorted(ACCESS))
def test_route_access(app, client, endpoint, who):
    make_campaign("walk-appeal")
    if who != "anonymous":
        roles = () if who == "supporter" else (Role(who),)
        sign_in_as(client, make_person(f"{who}@levantwire.example", roles=roles))
    rules = [r for r in _rules(app) if r.endpoint == endpoint]
    assert rules
    for rule in rules:
        values = {name: SAMPLE[name] for name in rule.arguments}
        with app.test_request_context():
            path = app.url_map.bind("donate.test").build(endpoint, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": csrf_token(client)} if method == "POST" else {}
            response = client.open(path, method=method, data=data)
            response.close()
            got = outcome(response)
            location = response.headers.get("Location")
            assert got == ACCESS[endpoint][WHO.index(who)], (method, path, who,
                                                            response.status_code, location)


@pytest.mark.parametrize("path", ["/staff/", "/staff/finance/reconciliation",
                                  "/staff/operations/"])
def test_every_staff_blueprint_keeps_its_pages_out_of_caches(client, as_role, path):
    """Staff, finance and operations pages hold donors' data: no browser or proxy keeps them
    (the hooks app.staff.roles.staff_pages gives each of their blueprints)."""
    as_role("admin")
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-store"
