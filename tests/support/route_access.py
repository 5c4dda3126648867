"""``ACCESS``, the one table of who gets in: for each endpoint of the app, what each of
anonymous, supporter, fundraiser, finance and admin (``WHO``) gets. ``ok`` means the view itself
answered (a page, a redirect of its own, or its own 4xx for the empty or made-up input sent),
``signin`` a redirect to the sign-in page, ``403`` a refusal. tests/staff/test_route_access.py
walks every route against it (a new route fails there until its author adds it here), and
tests/security/test_route_fuzz.py fuzzes within it.
"""

from __future__ import annotations

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
    # Prompts: the fundraisers' pages; the embeds' rules, decision, boxes and counters for
    # everyone.
    "prompt_staff.index": FUNDRAISING,
    "prompt_staff.new": FUNDRAISING,
    "prompt_staff.edit": FUNDRAISING,
    "prompt_staff.results": FUNDRAISING,
    "prompt_staff.email_appeal": FUNDRAISING,
    "prompts.live": PUBLIC,
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
