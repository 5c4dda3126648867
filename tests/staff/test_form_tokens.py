"""Every POST form on every staff page carries a CSRF token the app accepts.

The other staff tests post a token they make themselves (``tests.support.staff.csrf_token``),
so they passed while the dashboard's Publish, Pause, Resume and End buttons went out with none
(the template imported a macro under the name of the form the view passed it). Here an admin,
who may open every staff page, fetches each one (the dashboard in each state of a campaign)
with CSRF checked as in production, and every ``<form method="post">`` is read from the HTML.
``tests/browser/test_staff_in_browser.py`` clicks the state buttons themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import session
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from app.db import utcnow
from app.extensions import db
from app.staff.models import Role
from tests.factories import make_campaign, paid_gift
from tests.support.staff import make_person, sign_in_as

STAFF_BLUEPRINTS = ("staff", "finance")


@dataclass
class Form:
    page: str
    action: str
    hidden: dict[str, str] = field(default_factory=dict)


class PostForms(HTMLParser):
    """The POST forms of a page, each with its hidden inputs."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._open = Form(self.page, attrs.get("action") or self.page)
            self.forms.append(self._open)
        elif tag == "input" and self._open and attrs.get("type") == "hidden":
            self._open.hidden[attrs.get("name") or ""] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def post_forms(html: str, page: str) -> list[Form]:
    parser = PostForms(page)
    parser.feed(html)
    return parser.forms


def test_the_parser_finds_a_form_without_its_token():
    """The check below can fail: a form with no token is read as one."""
    forms = post_forms('<form method="post" action="/x"><button>Go</button></form>'
                       '<form method="get"><input type="hidden" name="q"></form>', "/page")
    assert forms == [Form("/page", "/x", {})]


@pytest.fixture
def staff_site(app, client):
    """An admin signed in, and something on every staff page: a campaign in each state, an
    offline cheque, a donor with last year's receipted gift (so the statements page offers to
    send them)."""
    app.config["WTF_CSRF_ENABLED"] = True  # the default, said out loud: the point of the test
    now = utcnow()
    campaigns = {
        "draft": make_campaign("walk-draft", started_days_ago=-5, published=False),
        "scheduled": make_campaign("walk-scheduled", started_days_ago=-5),
        "live": make_campaign("walk-live"),
        "paused": make_campaign("walk-paused", paused_at=now - timedelta(hours=1)),
        "ended": make_campaign("walk-ended", started_days_ago=40, days_left=-10),
    }
    last_year = now.astimezone(UTC).year - 1
    paid_gift(campaigns["live"], when=datetime(last_year, 6, 1, 15, tzinfo=UTC))
    db.session.commit()
    admin = make_person("admin@levantwire.example", roles=(Role.ADMIN,))
    sign_in_as(client, admin)
    gift_id = _record_cheque(client)
    samples = {"slug": [c.slug for c in campaigns.values()], "gift_id": [gift_id],
               "supporter_id": [admin.id]}
    return samples


def _record_cheque(client) -> int:
    """An offline cheque, entered through its own form with the token the page gives."""
    page = client.get("/staff/finance/offline/new")
    [form] = [f for f in post_forms(page.get_data(as_text=True), "/staff/finance/offline/new")
              if "offline/new" in f.action]
    today = utcnow().astimezone(UTC).date() - timedelta(days=1)
    response = client.post(form.action, data={
        **form.hidden, "received_on": today.isoformat(), "method": "cheque",
        "reference": "004512", "donor_name": "Yusuf Haddad", "email": "yusuf@example.org",
        "campaign": "walk-live", "amount": "250.00"})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def staff_pages(app, samples) -> list[str]:
    """Every GET route of the staff blueprints, with each sample value of its variables."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in STAFF_BLUEPRINTS or "GET" not in rule.methods:
            continue
        if not rule.rule.startswith("/staff"):
            continue  # finance's receipt download for donors lives under /account
        names = sorted(rule.arguments)
        missing = [n for n in names if n not in samples and n != "number"]
        assert not missing, f"add samples for {missing} ({rule.rule}) to staff_site"
        if "number" in names:
            continue  # a receipt's PDF: no forms
        combos = [{}]
        for name in names:
            combos = [{**c, name: v} for c in combos for v in samples[name]]
        with app.test_request_context():
            adapter = app.url_map.bind("donate.test")
            paths += [adapter.build(rule.endpoint, values) for values in combos]
    return sorted(set(paths))


def test_every_post_form_on_every_staff_page_carries_a_valid_token(app, client, staff_site):
    forms: list[Form] = []
    pages = staff_pages(app, staff_site)
    for path in pages:
        response = client.get(path)
        # 422: a download asked for with no period is its form again, with the errors.
        assert response.status_code in (200, 422), (path, response.status_code)
        if response.mimetype == "text/html":
            forms += post_forms(response.get_data(as_text=True), path)

    with client.session_transaction() as saved:
        raw_token = saved["csrf_token"]
    missing, refused = [], []
    with app.test_request_context():
        session["csrf_token"] = raw_token  # the client's session, as the next POST brings it
        for form in forms:
            # A prefixed form's is "<prefix>-csrf_token": Flask-WTF takes any field so named.
            token = next((v for k, v in form.hidden.items() if k.endswith("csrf_token")), None)
            if not token:
                missing.append((form.page, form.action))
                continue
            try:
                validate_csrf(token)
            except ValidationError as exc:
                refused.append((form.page, form.action, str(exc)))
    assert not missing, f"{len(missing)} of {len(forms)} POST forms carry no CSRF token: {missing}"
    assert not refused, refused

    # The walk reached the forms that lost their token, and the others worth having.
    actions = {form.action.rsplit("/", 1)[-1] for form in forms}
    assert {"publish", "pause", "resume", "end", "revoke", "draft", "correct", "reverse",
            "send"} <= actions, actions
    assert len(forms) > 30, len(forms)
