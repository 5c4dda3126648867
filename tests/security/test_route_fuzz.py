"""Every route in ``app.url_map``, walked with hostile input as each kind of visitor: no answer
is a 5xx, and nothing is written.

Each visitor (anonymous, a supporter, a fundraiser, finance, an admin) walks every route with
one client, signed in once. A route is walked in full by the first of them it lets in
(``walks_in_full``: a public route by anonymous, a reader's by the supporter, a staff route by
the first staff role it is for):

- each path variable in turn takes each hostile value for its converter, the others real ones
  (the live campaign, the supporter's own plan, an offline gift...);
- a GET takes each hostile value in every query parameter at once (those the views read,
  ``QUERY``, and a few no view reads), then each parameter alone beside real values for the
  others, then every parameter twice;
- a POST sends the form of the page it lives on, as a browser would, with the CSRF token that
  page gave: without the token; with every field at each hostile value; each field alone at
  a value every field must refuse, beside the page's values (and real ones where the page
  leaves a field empty, so that only that field is wrong); each field left out; every field
  twice. Date fields alone also take the calendar's first and last days.

The other visitors send one hostile request to each route (``light_cases``): the same view
answers them, or its guard first.

After every request the rows of every table are counted: a request may change rows only where
``MAY_WRITE`` says why (and the cases that send a date a form may accept are only checked for
a 5xx).

Hostile values travel as a browser or a script would put them on the wire: percent-escapes of
bytes that are not UTF-8 and of control characters stay escapes.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from sqlalchemy import select
from wtforms.fields.core import UnboundField

from app.audit import Actor
from app.core import MAX_ID
from app.db import utcnow
from app.embeds.services import EmbedSigner
from app.extensions import db
from app.finance.models import Receipt
from app.finance.offline import OfflineGift, record_offline_gift
from app.giving.models import Gift, GiftStatus, RecurringPlan
from app.giving.services import cancel_plan
from app.news.models import CategoryKind, NewsSubscriber, SubscriberStatus
from app.news.services import Signer, add_category
from app.payments.providers import current_provider
from app.payments.views import card_update_url
from app.prompts.models import Placement, Prompt, Segment
from app.staff.models import Role, StaffRole
from app.templating import org_zone
from tests.factories import make_campaign
from tests.support.accounts import PASSWORD, RequestScopedClient, make_account
from tests.support.flow import give, submit_gift
from tests.support.route_access import ACCESS, WHO
from tests.support.staff import make_person, sign_in_as

FORM = "application/x-www-form-urlencoded"

# -- the hostile values ---------------------------------------------------------------------------

#: As they go on the wire (percent-escapes are sent as they are).
TEXT = {
    "negative": "-1",
    "2^31": str(2**31),
    "2^63": str(2**63),
    "5000 digits": "9" * 5000,  # more digits than int() takes
    "10k characters": "x" * 10_000,
    "not UTF-8": "%ff%fe%80abc",
    "NUL": "a%00b",
    "last day": "9999-12-31",
}
#: Control characters other than NUL (each field alone gets them in turn, see REFUSED_ANYWHERE).
CONTROL = "a%1b[31m%7f%08b"
#: Every query parameter at once (2^31 is sent to each parameter alone).
QUERY_TEXT = {k: v for k, v in TEXT.items() if k != "2^31"}
#: A path's text variables (a slug, a token, a file's name), and a way out of their folder.
PATH_TEXT = {**{k: TEXT[k] for k in ("negative", "2^63", "10k characters", "not UTF-8", "NUL")},
             "traversal": "..%2f..%2fetc%2fpasswd"}
#: ``<int:...>``: out of the column's range (the converter's 404), and in it (the view's own).
INT = {"negative": "-1", "MAX_ID": str(MAX_ID), "2^31": str(2**31), "2^63": str(2**63),
       "5000 digits": "9" * 5000, "NUL": "1%00"}
#: What every field must refuse whatever the others hold: each field in turn gets one of them
#: (the next), beside real values, where the request would otherwise go through.
REFUSED_ANYWHERE = {"not UTF-8": TEXT["not UTF-8"], "NUL": TEXT["NUL"],
                    "control characters": CONTROL}
#: What each query parameter gets alone, beside real values: both integer limits, and one of
#: the texts in turn.
QUERY_ALONE = ("2^31", "2^63")
QUERY_ALONE_TEXT = ("not UTF-8", "10k characters")
#: Taken in turn by the query parameters of a route its visitor is not the one to walk, and by
#: those of a route that reads none (``GENERIC_QUERY`` only).
LIGHT = ("2^63", "not UTF-8", "10k characters", "negative")
#: Edge values a date field may accept (so these cases are checked for a 5xx, not for writes).
EDGES = {
    "date": {"first day": "0001-01-01", "last day": "9999-12-31"},
    "datetime-local": {"first minute": "0001-01-01T00:00", "last minute": "9999-12-31T23:59"},
}

#: An article page of the newsroom (the walk's EMBED_ORIGINS): the embeds' ``page``.
ARTICLE = "https://www.levantwire.example/2026/12/story"

#: Parameters no view reads.
GENERIC_QUERY = ("page", "id", "sort")

#: The query parameters each view reads (``request.args`` in app/, and the GET forms it
#: parses; ``test_every_query_parameter_a_view_reads_is_walked``), with a real value for each
#: (``{name}``: the site's).
QUERY: dict[str, dict[str, str]] = {
    "campaigns.give_now": {"amount": "25", "frequency": "monthly", "utm_source": "mail",
                           "utm_medium": "email", "utm_campaign": "walk", "utm_term": "t",
                           "utm_content": "c"},
    "campaigns.campaign": {"amount": "25", "frequency": "monthly", "gift": "{gift}",
                           "utm_source": "mail", "utm_medium": "email", "utm_campaign": "walk",
                           "utm_term": "t", "utm_content": "c"},
    "accounts.signin": {"next": "/account/gifts"},
    "embeds.campaign": {"page": ARTICLE, "utm_campaign": "prompt-1", "utm_term": "a"},
    "embeds.subscribe": {"page": ARTICLE},
    "embeds.follow": {"page": ARTICLE, "reader": "{reader}"},
    "embeds.follow_connect": {"page": ARTICLE},
    "prompts.decision": {"page": ARTICLE, "views": "3", "seen": "{prompt_id}.all.1",
                         "dismissed": "{prompt_id}", "gave_until": "1", "rid": "reader-1",
                         "email": "1", "reader": "{reader}", "status": "made-up-token"},
    "prompts.box": {"page": ARTICLE, "track": "1"},
    "prompts.give": {"page": ARTICLE, "track": "1"},
    "prompts.status": {"page": ARTICLE},
    "prompt_staff.new": {"campaign": "{campaign_id}"},
    "accounts.plan": {"card": "updated"},
    "finance.exports": {"from": "{first}", "to": "{last}", "campaign": "walk-appeal",
                        "status": "paid", "frequency": "one_time", "currency": "USD",
                        "method": "sandbox", "payout": "po_1", "format": "csv"},
    "finance.export_download": {"from": "{first}", "to": "{last}", "campaign": "walk-appeal",
                                "status": "paid", "frequency": "one_time", "currency": "USD",
                                "method": "sandbox", "payout": "po_1", "format": "csv"},
    "finance.reconciliation": {"from": "{first}", "to": "{last}", "campaign": "walk-appeal"},
    "finance.statements": {"year": "{year}", "continue": "1", "force": "1"},
    "finance.statement_preview": {"year": "{year}", "donor": "reader@example.org"},
    "operations.refund_lookup": {"gift": "{gift}"},
    "staff.supporters": {"q": "reader"},
    "staff.lapsed": {"kind": "sybunt"},
    "staff.lapsed_download": {"kind": "sybunt"},
    "staff.audit_log": {"actor": "admin", "action": "role.grant", "target": "campaign:1",
                        "since": "{first}", "until": "{last}"},
}

#: Where the form each POST route takes lives, when not on its own path.
FORM_PAGES = {
    "accounts.signout_everywhere": "/account",
    "accounts.change_amount": "/account/plans/<plan_id>",
    "accounts.update_card": "/account/plans/<plan_id>",
    "accounts.restart": "/account/plans/<plan_id>",
    "accounts.change_email": "/account/profile",
    "accounts.cancel_change_email": "/account/profile",
    "accounts.password": "/account/profile",
    "accounts.export": "/account/data",
    "accounts.delete": "/account/data",
    "giving.give": "/campaigns/<slug>",
    "news.follow": "/news/my",
    "embeds.subscribe": f"/embed/news/subscribe?page={ARTICLE}",
    "embeds.follow_category": f"/embed/news/follow?page={ARTICLE}&reader={{reader}}",
    "news.unsubscribe_now": "/news/unsubscribe/<token>",
    "finance.offline_correct": "/staff/finance/offline/<gift_id>",
    "finance.offline_reverse": "/staff/finance/offline/<gift_id>",
    "finance.statements_send": "/staff/finance/statements?year={year}",
    "staff.calendar_draft": "/staff/calendar",
    "staff.campaign_state_change": "/staff/campaigns/<slug>",
    "staff.revoke": "/staff/roles",
    "operations.refund": "/staff/operations/refunds?gift=<gift_id>",
    "operations.sync_now": "/staff/operations/",
    "prompt_staff.email_appeal": "/staff/prompts/",
}

#: POST routes that take no form a page gives (what they are sent instead: their path's
#: hostile values and hostile fields without a form's).
NO_FORM = {
    "payments.webhook": "a provider's signed JSON, not a form (tests/security/"
                        "test_hostile_input.py sends it malformed events)",
    "accounts.follow_signin_link": "its form appears only for a valid emailed link",
    "accounts.follow_verify_link": "its form appears only for a valid emailed link",
    "accounts.follow_email_change_link": "its form appears only for a valid emailed link",
    "accounts.reset_with_link": "its form appears only for a valid emailed link",
    "accounts.signout": "anyone may post it, so anonymous walks it, and its button is on the "
                        "account page",
    "operations.retry_event": "its button is beside a stored event not applied: the site has "
                              "none",
    "operations.retry_job": "its button is beside a failed job: jobs run inline in the walk",
    "operations.resend_mail": "its button is beside mail not delivered: the site has none",
    "operations.settle_fee": "its button is beside a Stripe charge whose fee is unknown: the "
                             "site's are the sandbox's",
    "finance.statements_correct": "its button appears only when a donor is due a corrected "
                                  "statement: the site has sent none",
    "prompts.event": "a prompt's box posts its counters from its script, with no form",
    "imports.gifts_confirm": "its button is beside an import's checked dry run: the site has "
                             "none (tests/finance/test_import_pages.py confirms one)",
    "imports.supporters_confirm": "its button is beside an import's checked dry run: the site "
                                  "has none",
}

#: Routes whose valid request changes rows by design, even with hostile values where they do not
#: matter. Nothing else may change a row.
MAY_WRITE = {
    "accounts.cancel": "its one field is an optional reason: any short text is one",
    "finance.offline_reverse": "a reason (any short text) and a box (any value ticks it)",
    "accounts.restart": "its one field is a hidden key of 16 to 64 characters (19 digits are "
                        "one): a restart starts a gift",
    "operations.refund": "a reason (any short text) and a hidden key of 16 to 64 characters: "
                         "a refund is asked of the sandbox, whose event records it",
    "operations.sync_now": "a button: pressed, the catch-up sync runs, audited",
    "prompts.give": "a prompt's give link counts its click (a total per prompt, variant and "
                    "day) whatever the article's address",
    "prompts.event": "a prompt's box counts an impression or a dismissal (totals), whatever "
                     "else is sent",
    "prompt_staff.email_appeal": "a button: pressed, the daily email's appeal is switched, "
                                 "audited",
}
#: Tables any request may change.
MAY_WRITE_TABLES = {
    "dashboard_snapshot": "the dashboards' cached rollup of the ledger, brought up to date by "
                          "the staff page that reads it",
}

# -- the site -------------------------------------------------------------------------------------


@pytest.fixture
def site(app) -> dict[str, str]:
    """The real values the walk names: a live campaign with a pending gift; a supporter with a
    running, a cancelled and a monthly gift to cancel, a receipt, an email change on its way,
    a news subscription and a category to follow; an offline cheque; a staff grant that is
    nobody's in the walk (so no walk revokes its own)."""
    app.test_client_class = RequestScopedClient  # a fresh g (and CSRF token) per request
    app.config["EMBED_ORIGINS"] = "https://www.levantwire.example"
    campaign = make_campaign("walk-appeal")
    reader = make_account("reader@example.org")
    donor = app.test_client()
    give(donor, "walk-appeal", frequency="monthly", amount="2500", email=reader.email)
    give(donor, "walk-appeal", frequency="monthly", amount="5000", email=reader.email)
    give(donor, "walk-appeal", frequency="monthly", amount="10000", email=reader.email)
    give(donor, "walk-appeal", amount="5000", email=reader.email)  # one time: refundable
    online = db.session.scalar(select(Gift).where(Gift.plan_id.is_(None),
                                                  Gift.status == GiftStatus.PAID))
    running, canceled, to_cancel = db.session.scalars(
        select(RecurringPlan).order_by(RecurringPlan.id))
    cancel_plan(canceled, current_provider(), now=utcnow())
    checkout = submit_gift(app.test_client(), "walk-appeal", amount="5000").headers["Location"]
    pending = db.session.scalar(select(Gift).where(Gift.status == GiftStatus.PENDING))
    portal = current_provider().billing_portal_url(
        customer_id=running.provider_customer_id, return_url="http://donate.test/",
        updated_url="http://donate.test/")
    category, _ = add_category("Syria", CategoryKind.REGION)
    now = utcnow()
    prompt = Prompt(campaign_id=campaign.id, name="Walk", placement=Placement.OVERLAY,
                    segment=Segment.EVERYONE, starts_at=now, ends_at=now + timedelta(days=5),
                    headline_a="Stand with us", button_a="Give", headline_b="Keep it free",
                    button_b="Support us")
    db.session.add(prompt)
    subscriber = NewsSubscriber(email=reader.email, supporter_id=reader.id,
                                status=SubscriberStatus.CONFIRMED, consent_version="1",
                                consented_at=now, consent_source="/news/subscribe",
                                confirmed_at=now)
    db.session.add(subscriber)
    today = now.astimezone(org_zone()).date()
    offline = record_offline_gift(OfflineGift(
        received_on=today, method="cheque", reference="004512", donor_name="Yusuf Haddad",
        email="yusuf@example.org", campaign="walk-appeal", amount=25000),
        actor=Actor(id=None, label="test"), zone=org_zone(), now=now, send_receipt=False)
    someone = make_person("someone@levantwire.example", roles=(Role.FUNDRAISER,))
    reader.pending_email = "noa.new@example.org"
    db.session.commit()
    with app.test_request_context():
        card = card_update_url(running.id)

    def last_part(url: str) -> str:
        return urlsplit(url).path.rsplit("/", 1)[1]

    return {
        "slug": campaign.slug, "plan_id": str(running.id), "canceled_plan_id": str(canceled.id),
        "plan_to_cancel": str(to_cancel.id),
        "public_id": pending.public_id, "gift": pending.public_id,
        "number": db.session.scalar(select(Receipt.number).order_by(Receipt.id)),
        "gift_id": str(offline.id), "online_gift_id": str(online.id),
        "supporter_id": str(reader.id),
        "grant_id": str(db.session.scalar(select(StaffRole.id).where(
            StaffRole.supporter_id == someone.id))),
        "category": category.slug, "checkout": last_part(checkout),
        "portal": last_part(portal), "card": last_part(card),
        "unsubscribe": Signer(app.config["SECRET_KEY"]).unsubscribe_token(subscriber.id,
                                                                          subscriber.email),
        "reader": EmbedSigner(app.config["SECRET_KEY"]).reader_token(reader.id,
                                                                     reader.session_version),
        "first": today.replace(day=1).isoformat(), "last": today.isoformat(),
        "year": str(today.year), "prompt_id": str(prompt.id), "campaign_id": str(campaign.id),
    }


#: Path variables whose real value is not the site's value of that name.
PATH_VALUES = {
    ("accounts.restart", "plan_id"): "canceled_plan_id",
    ("accounts.cancel", "plan_id"): "plan_to_cancel",  # its walk cancels it
    ("news.follow", "slug"): "category",
    ("embeds.follow_category", "slug"): "category",
    ("operations.refund", "gift_id"): "online_gift_id",
    ("sandbox.checkout", "token"): "checkout",
    ("sandbox.portal", "token"): "portal",
    ("payments.update_card", "token"): "card",
    ("payments.card_updated", "token"): "card",
    ("news.unsubscribe_page", "token"): "unsubscribe",
    ("news.unsubscribe_now", "token"): "unsubscribe",
}
#: Real enough values for the rest (a made-up token is the view's own 400/404/410).
FIXED_PATH_VALUES = {"token": "made-up-token", "name": "sandbox", "filename": "css/app.css",
                     "action": "pause", "event_id": "1", "email_id": "1", "payment_id": "1",
                     "job_id": "made-up-job", "variant": "a", "event": "impressions",
                     "run_id": "1"}


def real_path_value(site: dict[str, str], endpoint: str, name: str) -> str:
    key = PATH_VALUES.get((endpoint, name), name)
    return quote(site.get(key) or FIXED_PATH_VALUES[key], safe="")


# -- reading a page's forms -----------------------------------------------------------------------


@dataclass
class Control:
    name: str
    kind: str  # an input's type, "textarea" or "select"
    value: str | None  # what a browser sends for it as the page left it (None: nothing)


@dataclass
class PageForm:
    action: str
    controls: list[Control] = field(default_factory=list)

    @property
    def token(self) -> Control | None:
        # A prefixed form's is "<prefix>-csrf_token".
        return next((c for c in self.controls if c.name.endswith("csrf_token")), None)

    @property
    def fields(self) -> list[Control]:
        return [c for c in self.controls if not c.name.endswith("csrf_token")]


class FormReader(HTMLParser):
    """A page's POST forms: each control, with what a browser would send for it."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[PageForm] = []
        self._form: PageForm | None = None
        self._text: Control | None = None
        self._select: Control | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            if (a.get("method") or "get").lower() == "post":
                self._form = PageForm(urlsplit(a.get("action") or self.page).path)
                self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag == "option" and self._select is not None:
            if self._select.value is None or "selected" in a:
                self._select.value = a.get("value") or ""
            return
        name = a.get("name")
        if not name:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image"):
                return
            if kind not in ("radio", "checkbox"):
                self._form.controls.append(Control(name, kind, a.get("value") or ""))
                return
            value = (a.get("value") or "on") if "checked" in a else None
            old = next((c for c in self._form.controls if c.name == name), None)
            if old is None:
                self._form.controls.append(Control(name, kind, value))
            elif value is not None:
                old.value = value
        elif tag == "textarea":
            self._text = Control(name, "textarea", "")
            self._form.controls.append(self._text)
        elif tag == "select":
            self._select = Control(name, "select", None)
            self._form.controls.append(self._select)

    def handle_data(self, data):
        if self._text is not None:
            self._text.value += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea" and self._text is not None:
            # A newline right after <textarea> is not part of its text (HTML's parsing rule).
            text = self._text.value
            self._text.value = text[2:] if text.startswith("\r\n") else text.removeprefix("\n")
            self._text = None
        elif tag == "select":
            self._select = None


def post_forms(html: str, page: str) -> list[PageForm]:
    reader = FormReader(urlsplit(page).path)
    reader.feed(html)
    return reader.forms


#: Real values for the text fields a page leaves empty, by name (a prefix removed).
FILL = {
    "name": "Noa Levi", "email": "noa@example.org", "new_email": "noa.new@example.org",
    "password": PASSWORD, "current_password": PASSWORD, "new_password": PASSWORD + " again",
    "other_amount": "30", "amount": "40", "reason": "Moving abroad", "reference": "004513",
    "donor_name": "Yusuf Haddad", "confirm_email": "reader@example.org",
    "number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123",
    "occasion": "no-such-occasion", "title": "A new appeal", "slug": "a-new-appeal",
    "signatory_name": "Miriam Haddad", "goal": "1000",
}


def filled(form: PageForm) -> dict[str, str]:
    """The form as a person sends it: the page's values, its empty text fields typed in."""
    values = {}
    for control in form.fields:
        value = control.value
        if not value and control.kind not in ("checkbox", "radio", "select"):
            value = FILL.get(control.name.rsplit("-", 1)[-1], value)
        if value is not None:
            values[control.name] = value
    return values


def encode(pairs: list[tuple[str, str]], raw: set[int] = frozenset()) -> str:
    """A urlencoded body or query string: the values at the positions in ``raw`` as they are
    (already on the wire), the others escaped."""
    return "&".join(f"{quote_plus(k)}={v if i in raw else quote_plus(v)}"
                    for i, (k, v) in enumerate(pairs))


# -- the walk -------------------------------------------------------------------------------------

_COUNT_ALL: str | None = None


def row_counts() -> dict[str, int]:
    """Every table's number of rows, in one statement (built once: it runs after every
    request)."""
    global _COUNT_ALL
    if _COUNT_ALL is None:
        _COUNT_ALL = " UNION ALL ".join(f"SELECT '{t.name}', COUNT(*) FROM {t.name}"
                                        for t in db.metadata.sorted_tables)
    return dict(db.session.connection().exec_driver_sql(_COUNT_ALL).all())


VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def variables(rule) -> list[tuple[str, str]]:
    """(converter, name) of each of the rule's variables."""
    return [(m.group(1) or "default", m.group(2)) for m in VARIABLE.finditer(rule.rule)]


def walks_in_full(endpoint: str, who: str) -> bool:
    """Each route is walked in full by the first visitor it lets in, of anonymous, supporter,
    fundraiser, finance and admin: a public route by anonymous, a reader's by a supporter, a
    staff route by the first staff role it is for (so admin-only routes by admin)."""
    access = ACCESS.get(endpoint, ("ok",) * len(WHO))
    return "ok" in access and access.index("ok") == WHO.index(who)


@dataclass
class Case:
    label: str
    path: str
    query: str = ""
    body: str | None = None
    may_write: bool = False  # an edge value a form may accept


class Walk:
    def __init__(self, app, site: dict[str, str], who: str) -> None:
        self.app, self.site, self.who = app, site, who
        app.test_client_class = RequestScopedClient
        self.client = app.test_client()
        if who != "anonymous":
            roles = () if who == "supporter" else (Role(who),)
            email = "reader@example.org" if who == "supporter" else f"{who}@levantwire.example"
            sign_in_as(self.client, make_person(email, roles=roles))
        self.problems: list[str] = []
        self.requests = 0
        self.forms: set[str] = set()  # the POST routes sent the form their page gave
        self.counts = row_counts()

    def send(self, endpoint: str, method: str, case: Case) -> None:
        """One request, checked: no 5xx, and no row changed that may not be."""
        self.requests += 1
        label = f"{self.who} {method} {endpoint} [{case.label}]"
        try:
            response = self.client.open(
                case.path + (f"?{case.query}" if case.query else ""), method=method,
                data=None if case.body is None else case.body.encode(),
                content_type=FORM if case.body is not None else None)
            status = response.status_code
            response.close()
        except Exception as exc:  # under TESTING, what would be a 500 is raised
            db.session.rollback()
            self.problems.append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
            return
        if status >= 500:
            self.problems.append(f"{label}: {status}")
        counts = row_counts()
        changed = {t: (self.counts[t], n) for t, n in counts.items()
                   if self.counts[t] != n and t not in MAY_WRITE_TABLES}
        self.counts = counts
        if changed and endpoint not in MAY_WRITE and not case.may_write:
            self.problems.append(f"{label}: changed rows {changed}")

    def path(self, rule, hostile: dict[str, str] | None = None) -> str:
        hostile = hostile or {}
        return VARIABLE.sub(lambda m: hostile.get(m.group(2)) or real_path_value(
            self.site, rule.endpoint, m.group(2)), rule.rule)

    def page_form(self, rule) -> PageForm | None:
        """The form a POST route takes, read off its page as this visitor sees it."""
        page = VARIABLE.sub(lambda m: real_path_value(self.site, rule.endpoint, m.group(2)),
                            FORM_PAGES.get(rule.endpoint, rule.rule)).format(**self.site)
        response = self.client.get(page)
        response.close()
        if response.status_code != 200:
            return None  # not a page for this visitor (its guard's redirect, say)
        action = self.path(rule)
        forms = [f for f in post_forms(response.get_data(as_text=True), page)
                 if f.action == action]
        if not forms:
            self.problems.append(f"{self.who}: no form for {rule.endpoint} on {page}")
            return None
        self.forms.add(rule.endpoint)
        return forms[0]

    def token(self) -> str:
        """A CSRF token from a page this visitor can open, as a form on it carries it."""
        page = "/account/signin" if self.who == "anonymous" else "/account/profile"
        response = self.client.get(page)
        [form, *_] = post_forms(response.get_data(as_text=True), page)
        return form.token.value

    # -- the cases --

    def path_cases(self, rule, method: str, body: str | None) -> Iterator[Case]:
        for converter, name in variables(rule):
            table = INT if converter == "int" else PATH_TEXT
            for label, value in table.items():
                yield Case(f"{name}={label}", self.path(rule, {name: value}), body=body)

    def query_cases(self, rule) -> Iterator[Case]:
        real = {k: v.format(**self.site) for k, v in QUERY.get(rule.endpoint, {}).items()}
        params = [*real, *GENERIC_QUERY]
        path = self.path(rule)
        # Parameters no view reads are refused for a control character and otherwise ignored.
        for label, value in (QUERY_TEXT if real else {k: TEXT[k] for k in ("not UTF-8", "NUL")}
                             ).items():
            pairs = [(p, value) for p in params]
            yield Case(f"every parameter={label}", path, encode(pairs, set(range(len(pairs)))))
        for i, param in enumerate(real):
            for label in (*QUERY_ALONE, QUERY_ALONE_TEXT[i % len(QUERY_ALONE_TEXT)]):
                pairs = [(k, TEXT[label] if k == param else v) for k, v in real.items()]
                yield Case(f"{param}={label}", path, encode(pairs, {i}))
        if real:
            pairs = [(p, v) for p in params for v in (TEXT["not UTF-8"], real.get(p, "1"))]
            yield Case("every parameter twice", path,
                       encode(pairs, set(range(0, len(pairs), 2))))

    def form_cases(self, rule, form: PageForm | None, token: str) -> Iterator[Case]:
        path = self.path(rule)
        head = [(form.token.name, form.token.value)] if form and form.token else [
            ("csrf_token", token)]
        fields = [(c.name, c.kind) for c in form.fields] if form else [("field", "text")]
        values = filled(form) if form else {}
        everything = TEXT["10k characters"]
        yield Case("no token", path, body=encode([(n, everything) for n, _ in fields]))
        if form is None:  # no page gives its form: a field it does not know, with the token
            yield Case("a field", path, body=encode(head + [("field", everything)]))
            return
        if not form.fields:
            return  # a button: with its token, pressing it is the action
        for label, value in TEXT.items():
            pairs = head + [(n, value) for n, _ in fields]
            yield Case(f"every field={label}", path, body=encode(pairs, set(range(1, len(pairs)))))
        for i, (name, kind) in enumerate(fields):
            if kind == "checkbox":
                continue  # its value is never read: only whether it is sent
            refused = list(REFUSED_ANYWHERE)[i % len(REFUSED_ANYWHERE)]
            alone = {refused: (REFUSED_ANYWHERE[refused], False)}
            alone.update({label: (value, True) for label, value in EDGES.get(kind, {}).items()})
            for label, (value, may_write) in alone.items():
                pairs = head + [(n, value if n == name else v) for n, v in values.items()]
                if name not in values:
                    pairs.append((name, value))
                raw = {i for i, (n, _) in enumerate(pairs) if n == name and i > 0}
                yield Case(f"{name}={label}", path, body=encode(pairs, raw),
                           may_write=may_write)
            # Left out, the others a value that some of them refuse (so every validator runs,
            # with nothing stored but what a form with a missing field may store).
            pairs = head + [(n, TEXT["negative"]) for n, _ in fields if n != name]
            yield Case(f"without {name}", path, body=encode(pairs))
        pairs = head + [(n, v) for n, _ in fields for v in (TEXT["NUL"], TEXT["not UTF-8"])]
        yield Case("every field twice", path, body=encode(pairs, set(range(1, len(pairs)))))

    def light_cases(self, rule, method: str, token: str) -> Iterator[Case]:
        """A route this visitor is not the one to walk (its guard may answer first): one
        request, with hostile path variables and query parameters (a GET) or a hostile field
        (a POST: with a token where the path is hostile, without one elsewhere, so that no
        button is pressed). The parameters take the ``LIGHT`` values in turn."""
        names = variables(rule)
        path = self.path(rule, {n: INT["2^63"] if c == "int" else TEXT["10k characters"]
                                for c, n in names})
        if method == "GET":
            params = [*QUERY.get(rule.endpoint, {}), *GENERIC_QUERY]
            pairs = [(p, TEXT[LIGHT[i % len(LIGHT)]]) for i, p in enumerate(params)]
            yield Case("everything", path, encode(pairs, set(range(len(pairs)))))
        elif names:
            yield Case("path", path, body=encode([("csrf_token", token),
                                                  ("field", TEXT["not UTF-8"])], {1}))
        else:
            yield Case("no token", path, body=encode([("field", TEXT["NUL"])], {0}))

    def cases(self, rule, method: str, token: str) -> Iterator[Case]:
        if not walks_in_full(rule.endpoint, self.who):
            yield from self.light_cases(rule, method, token)
        elif method == "GET":
            yield from self.path_cases(rule, method, None)
            yield from self.query_cases(rule)
        else:
            form = None if rule.endpoint in NO_FORM else self.page_form(rule)
            head = [(form.token.name, form.token.value)] if form and form.token else [
                ("csrf_token", token)]
            yield from self.path_cases(rule, method,
                                       encode(head + list(filled(form).items()) if form else
                                              head))
            yield from self.form_cases(rule, form, token)

    def run(self) -> None:
        token = self.token()
        for rule in sorted(self.app.url_map.iter_rules(), key=lambda r: (r.endpoint, r.rule)):
            if rule.endpoint not in ACCESS:
                self.problems.append(f"{rule.endpoint} is not in ACCESS "
                                     "(tests/support/route_access.py): walked as if open")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for case in self.cases(rule, method, token):
                    self.send(rule.endpoint, method, case)


def test_hostile_input_gets_no_5xx_and_writes_nothing(app, site):
    """As each visitor in turn, on one site (one client each, signed in once)."""
    problems, requests, forms = [], {}, set()
    for who in WHO:
        walk = Walk(app, site, who)
        walk.run()
        problems += walk.problems
        requests[who] = walk.requests
        forms |= walk.forms
        if who != "anonymous":  # no sign-out button was pressed: the walk is still who it was
            assert walk.client.get("/account").status_code == 200, who
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert all(n > 100 for n in requests.values()), requests
    # Every POST route but those NO_FORM lists was sent its page's form, fields and token.
    posted = {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods}
    assert posted - forms == set(NO_FORM)


def query_parameters_read() -> set[str]:
    """The query parameters app/ reads by name: ``request.args.get("x")``,
    ``request.args["x"]``, ``"x" in request.args``, and the fields of a form built on
    ``request.args`` (by their HTML name)."""

    def is_args(node) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "args"
                and isinstance(node.value, ast.Name) and node.value.id == "request")

    found = set()
    root = Path(importlib.import_module("app").__file__).parent
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                func, first = node.func, node.args[0]
                if (isinstance(func, ast.Attribute) and func.attr == "get"
                        and is_args(func.value) and isinstance(first, ast.Constant)):
                    found.add(first.value)
                elif is_args(first) and isinstance(func, ast.Name):
                    form = getattr(importlib.import_module(module), func.id)
                    found |= {getattr(form, a).name or a for a in dir(form)
                              if isinstance(getattr(form, a), UnboundField)}
            elif (isinstance(node, ast.Subscript) and is_args(node.value)
                  and isinstance(node.slice, ast.Constant)):
                found.add(node.slice.value)
            elif (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
                  and any(is_args(c) for c in node.comparators)):
                found.add(node.left.value)
    return found


def test_every_query_parameter_a_view_reads_is_walked():
    read = query_parameters_read()
    # The finder finds what it should: a name read each way, and a GET form's fields.
    assert {"q", "next", "continue", "year", "from", "donor", "until", "gift"} <= read, read
    walked = {name for params in QUERY.values() for name in params}
    assert read <= walked, f"add to QUERY in {__file__}: {sorted(read - walked)}"
