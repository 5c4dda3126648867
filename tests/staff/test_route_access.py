"""Every route of the app, walked by an anonymous visitor, a supporter and each staff role.

``ACCESS`` is the one table of who gets in: for each endpoint, what each of anonymous,
supporter, fundraiser, finance and admin gets. ``ok`` means the view itself answered (a page, a
redirect of its own, or its own 4xx for the empty or made-up input sent here), ``signin`` a
redirect to the sign-in page, ``403`` a refusal. A new route fails
``test_every_route_is_in_the_table`` until its author adds it here.
"""

from __future__ import annotations

import pytest

from app.staff.models import Role
from tests.factories import make_campaign
from tests.support.staff import csrf_token, make_person, sign_in_as

WHO = ("anonymous", "supporter", "fundraiser", "finance", "admin")
PUBLIC = ("ok",) * 5
SIGNED_IN = ("signin", "ok", "ok", "ok", "ok")
FUNDRAISING = ("signin", "403", "ok", "403", "ok")
FINANCE = ("signin", "403", "403", "ok", "ok")
ADMIN = ("signin", "403", "403", "403", "ok")
ANY_STAFF = ("signin", "403", "ok", "ok", "ok")
# A membership perk: none of the people here has given, so none has it (roles bring no perks).
PERK = ("signin", "403", "403", "403", "403")

ACCESS: dict[str, tuple[str, ...]] = {
    "static": PUBLIC,
    "core.healthz": PUBLIC,
    "core.favicon": PUBLIC,
    # Loopback clients (as the test client is) or a METRICS_TOKEN: tests/watching.
    "metrics.metrics": PUBLIC,
    "campaigns.home": PUBLIC,
    "campaigns.give_now": PUBLIC,
    "campaigns.campaign": PUBLIC,
    "giving.give": PUBLIC,
    "giving.thanks": PUBLIC,
    "payments.webhook": PUBLIC,
    "payments.update_card": PUBLIC,
    "payments.card_updated": PUBLIC,
    "sandbox.checkout": PUBLIC,
    "sandbox.portal": PUBLIC,
    # Accounts: the forms and emailed links are for everyone; the account itself signed in.
    "accounts.signup": PUBLIC,
    "accounts.check_inbox": PUBLIC,
    "accounts.signin": PUBLIC,
    "accounts.signin_link": PUBLIC,
    "accounts.follow_signin_link": PUBLIC,
    "accounts.follow_verify_link": PUBLIC,
    "accounts.follow_email_change_link": PUBLIC,
    "accounts.reset_request": PUBLIC,
    "accounts.reset_with_link": PUBLIC,
    "accounts.signout": PUBLIC,
    "accounts.signout_everywhere": SIGNED_IN,
    "accounts.deleted": PUBLIC,
    "accounts.overview": SIGNED_IN,
    "accounts.gifts": SIGNED_IN,
    "accounts.receipt": SIGNED_IN,
    "finance.my_receipt": SIGNED_IN,
    "finance.receipt": FINANCE,
    "finance.exports": FINANCE,
    "finance.export_download": FINANCE,
    "finance.reconciliation": FINANCE,
    "finance.offline_gifts": FINANCE,
    "finance.offline_new": FINANCE,
    "finance.offline_gift": FINANCE,
    "finance.offline_correct": FINANCE,
    "finance.offline_reverse": FINANCE,
    "finance.statements": FINANCE,
    "finance.statement_preview": FINANCE,
    "finance.statements_send": FINANCE,
    "finance.statements_correct": FINANCE,
    "accounts.briefings": PERK,
    "accounts.plan": SIGNED_IN,
    "accounts.change_amount": SIGNED_IN,
    "accounts.cancel": SIGNED_IN,
    "accounts.update_card": SIGNED_IN,
    "accounts.restart": SIGNED_IN,
    "accounts.profile": SIGNED_IN,
    "accounts.change_email": SIGNED_IN,
    "accounts.cancel_change_email": SIGNED_IN,
    "accounts.password": SIGNED_IN,
    "accounts.data": SIGNED_IN,
    "accounts.export": SIGNED_IN,
    "accounts.delete": SIGNED_IN,
    # News: anyone subscribes; "my news" and following are for signed-in readers.
    "news.subscribe_page": PUBLIC,
    "news.check_inbox": PUBLIC,
    "news.confirm": PUBLIC,
    "news.unsubscribe_page": PUBLIC,
    "news.unsubscribe_now": PUBLIC,
    "news.my_news": SIGNED_IN,
    "news.follow": SIGNED_IN,
    # The embeds on the newsroom's pages: for everyone (a box without its article's address,
    # as walked here, is the view's own 400; the follow box signs in at the top level).
    "embeds.script": PUBLIC,
    "embeds.campaign": PUBLIC,
    "embeds.campaign_progress_json": PUBLIC,
    "embeds.subscribe": PUBLIC,
    "embeds.follow": PUBLIC,
    "embeds.follow_category": PUBLIC,
    "embeds.follow_connect": PUBLIC,
    # Staff.
    "staff.index": ANY_STAFF,
    "staff.campaigns": FUNDRAISING,
    "staff.campaign_new": FUNDRAISING,
    "staff.campaign_edit": FUNDRAISING,
    "staff.campaign_preview": FUNDRAISING,
    "staff.campaign_state_change": FUNDRAISING,
    "staff.dashboard": FUNDRAISING,
    "staff.dashboard_figures": FUNDRAISING,
    "staff.calendar": FUNDRAISING,
    "staff.calendar_draft": FUNDRAISING,
    "staff.supporters": FUNDRAISING,
    "staff.supporter": FUNDRAISING,
    "staff.lapsed": FUNDRAISING,
    "staff.lapsed_download": FUNDRAISING,
    "staff.roles": ADMIN,
    "staff.revoke": ADMIN,
    "staff.audit_log": ADMIN,
    # Prompts: the fundraisers' pages; the embeds' decision, boxes and counters for everyone.
    "prompt_staff.index": FUNDRAISING,
    "prompt_staff.new": FUNDRAISING,
    "prompt_staff.edit": FUNDRAISING,
    "prompt_staff.results": FUNDRAISING,
    "prompt_staff.email_appeal": FUNDRAISING,
    "prompts.decision": PUBLIC,
    "prompts.box": PUBLIC,
    "prompts.give": PUBLIC,
    "prompts.event": PUBLIC,
    "prompts.status": PUBLIC,
    # Imports from the staff pages: gift history for finance.
    "imports.gifts": FINANCE,
    "imports.gifts_run": FINANCE,
    "imports.gifts_confirm": FINANCE,
    "imports.gifts_errors": FINANCE,
    "imports.supporters": ADMIN,
    "imports.supporters_run": ADMIN,
    "imports.supporters_confirm": ADMIN,
    "imports.supporters_errors": ADMIN,
    # The operations inbox: finance.
    "operations.inbox": FINANCE,
    "operations.retry_event": FINANCE,
    "operations.retry_job": FINANCE,
    "operations.resend_mail": FINANCE,
    "operations.settle_fee": FINANCE,
    "operations.sync_now": FINANCE,
    "operations.refund_lookup": FINANCE,
    "operations.refund": FINANCE,
}

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
    assert not missing, f"add these endpoints to ACCESS in {__file__}: {missing}"
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
