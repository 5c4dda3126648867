"""``flask supporters import``: supporters and daily-email subscribers from another platform, in
our own columns or Ghost's member export as it is, with the Stripe subscriptions they give by.

One row is one supporter, keyed on the email (lowercased). :class:`SupportersImport` is the row
handler :func:`app.imports.run_import` drives (savepoints, batches, the dry run, duplicates):
it creates or updates the supporter, their daily-email consent and follows, and adopts their
live Stripe subscription as a plan, and says whether the row created, updated or changed
nothing, so that a rerun of the same file reports every row unchanged.

The rules it keeps:

- Consent is "confirmed" only with its evidence (when and how it was confirmed); a subscribed
  row without it is pending, and gets the opt-in email only with ``send_opt_in``. An address
  unsubscribed here is never subscribed again by a file; one the file says unsubscribed stops.
  Each consent the import writes records its file and line.
- Nothing is charged and nothing is sent (but the opt-in email when asked for): a subscription
  is read from Stripe and tagged with our plan's id in its metadata, no more.
- A subscription cancelled but paid until its period's end is a plan that ends then
  (``RecurringPlan.ends_at``): a member until that day, not a free one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select

from app import audit
from app.accounts.models import Supporter
from app.campaigns.models import Campaign, CampaignKind
from app.db import GrowingTables, among, insert_many, utcnow
from app.extensions import db
from app.giving.models import Frequency, PlanStatus, RecurringPlan
from app.imports import (
    ImportFileError,
    ImportReport,
    Outcome,
    Row,
    RowRefused,
    open_csv,
    run_import,
)
from app.imports.runner import BATCH
from app.imports.values import parse_bool, parse_moment
from app.money import KNOWN_CURRENCIES
from app.news.models import Category, Follow, NewsSubscriber, SubscriberStatus
from app.news.services import Signer, send_confirmation
from app.payments.base import PaymentProvider, ProviderError, ProviderSubscription
from app.payments.providers import provider_from_config
from app.urls import external_url

#: Our own columns (README, "Importing supporters"). Only ``email`` is required.
COLUMNS = [
    "email", "name", "note", "labels", "created_at",
    "address_line1", "address_line2", "city", "region", "postal_code", "country",
    "news_status", "news_consent_version", "news_opt_in_at", "news_opt_in_source",
    "news_confirmed_at", "news_confirmation_source", "news_unsubscribed_at",
    "followed_categories", "comped_until", "campaign",
    "stripe_customer_id", "stripe_subscription_id",
]
#: Ghost's member export, used as it is; its other columns (id, deleted_at, tiers, ...) are
#: ignored.
GHOST_COLUMNS = ["email", "name", "note", "subscribed_to_emails", "stripe_customer_id",
                 "complimentary_plan", "labels", "created_at"]
_GHOST_ONLY = {"subscribed_to_emails", "complimentary_plan"}

#: The campaign imported plans belong to when the row names none: created once, ended.
IMPORTED_CAMPAIGN = "imported-plans"
#: Ghost's complimentary plan has no end: comped until this.
COMPED_FOR_GOOD = datetime(9999, 12, 31, tzinfo=UTC)
#: The consent text version of a subscription whose file names none (Ghost's).
UNKNOWN_VERSION = "imported"

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_LIST = re.compile(r"[,;]")
_INTERVALS = {("month", 1): Frequency.MONTHLY, ("year", 1): Frequency.ANNUAL}
_LIVE_STATUS = {"active": PlanStatus.ACTIVE, "trialing": PlanStatus.ACTIVE,
                "past_due": PlanStatus.PAST_DUE, "unpaid": PlanStatus.PAST_DUE}
_NEWS_STATUS = {"subscribed": SubscriberStatus.CONFIRMED, "confirmed": SubscriberStatus.CONFIRMED,
                "pending": SubscriberStatus.PENDING,
                "unsubscribed": SubscriberStatus.UNSUBSCRIBED}
_ADDRESS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")
_LIMITS = {"name": 200, "labels": 500, "address_line1": 200, "address_line2": 200, "city": 100,
           "region": 100, "postal_code": 20}


def open_supporters_csv(source, *, max_bytes: int):
    """Open the file (a path or a binary stream) in our columns or Ghost's, which it tells by
    Ghost's own columns. Returns ``(csv_file, is_ghost)``; raises ImportFileError."""
    known = list(dict.fromkeys(COLUMNS + GHOST_COLUMNS))
    csv_file = open_csv(source, columns=known, required=["email"], allow_unknown=True,
                        max_bytes=max_bytes)
    header = {name.lower() for name in csv_file.header}
    ghost = bool(header & _GHOST_ONLY)
    names = {c.lower() for c in (GHOST_COLUMNS if ghost else COLUMNS)}
    wrong = [name for name in csv_file.header if name and name.lower() in
             {c.lower() for c in known} - names]
    unknown = [name for name in csv_file.header if name and name.lower() not in known]
    if not ghost and unknown:
        wrong += unknown
    if wrong:
        csv_file.close()
        kind = "Ghost's member export" if ghost else "this import's own columns"
        raise ImportFileError(
            f"The header row (line 1) mixes columns: read as {kind}, it has the unknown "
            f"column{'s' if len(wrong) > 1 else ''} {', '.join(wrong[:10])}. The columns are "
            "listed in README.")
    return csv_file, ghost


def email_key(row: Row) -> str | None:
    """What makes a row unique in a file: its email, lowercased."""
    return row.get("email").lower() or None


# -- reading one row --------------------------------------------------------------------------

@dataclass(frozen=True)
class NewsConsent:
    status: SubscriberStatus
    version: str
    opted_in_at: datetime
    source: str
    confirmed_at: datetime | None = None
    confirmation_source: str | None = None
    unsubscribed_at: datetime | None = None


@dataclass(frozen=True)
class SupporterRow:
    email: str
    name: str = ""
    note: str = ""
    labels: str = ""
    created_at: datetime | None = None
    address: dict[str, str] = field(default_factory=dict)
    news: NewsConsent | None = None
    categories: tuple[str, ...] = ()
    comped_until: datetime | None = None
    campaign: str = ""
    customer_id: str = ""
    subscription_id: str = ""


def _until(text: str, zone: ZoneInfo, column: str) -> datetime | None:
    """An "until" time: a bare date means to the end of that day in the organisation's zone
    (the next day's start); anything else as :func:`parse_moment` reads it."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        try:
            day = date.fromisoformat(text) + timedelta(days=1)
        except ValueError:
            raise RowRefused(f"{column} {text!r} is not a date (write it as 2027-06-30)") \
                from None
        return datetime.combine(day, time(), zone).astimezone(UTC)
    return parse_moment(text, zone, column)


def parse_row(row: Row, *, ghost: bool, zone: ZoneInfo, now: datetime) -> SupporterRow:
    """The row's values, checked; raises RowRefused naming what is wrong."""
    email = row.get("email").lower()
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise RowRefused(f"email {row.get('email')!r} is not an email address")
    for name, limit in _LIMITS.items():
        if len(row.get(name)) > limit:
            raise RowRefused(f"{name} is longer than {limit} characters")

    def time_of(name: str) -> datetime | None:
        return parse_moment(row.get(name), zone, name) if row.get(name) else None

    created_at = time_of("created_at")
    labels = ", ".join(dict.fromkeys(
        label.strip() for label in row.get("labels").split(",") if label.strip()))
    if len(labels) > 500:
        raise RowRefused("labels are longer than 500 characters")
    country = row.get("country").upper()
    if country and not _COUNTRY.fullmatch(country):
        raise RowRefused(f"country {row.get('country')!r} is not a two-letter ISO code")
    address = {name: row.get(name) for name in _ADDRESS if row.get(name)}
    if country:
        address["country"] = country
    if ghost:
        news = _ghost_news(row, created_at or now)
        comped = (COMPED_FOR_GOOD if parse_bool(row.get("complimentary_plan"), "complimentary_plan")
                  else None)
    else:
        news = _own_news(row, created_at, now, time_of)
        comped = _until(row.get("comped_until"), zone, "comped_until")
    categories = tuple(dict.fromkeys(
        c.strip().lower() for c in _LIST.split(row.get("followed_categories"))
        if c.strip()))
    return SupporterRow(
        email=email, name=row.get("name"), note=row.get("note"), labels=labels,
        created_at=created_at, address=address, news=news, categories=categories,
        comped_until=comped, campaign=row.get("campaign").lower(),
        customer_id=row.get("stripe_customer_id"),
        subscription_id=row.get("stripe_subscription_id"))


def _ghost_news(row: Row, opted_in_at: datetime) -> NewsConsent | None:
    """Ghost says only "subscribed" or not: no evidence of a confirmation, so pending. A
    member who is not subscribed may never have been: nothing to record."""
    if not parse_bool(row.get("subscribed_to_emails"), "subscribed_to_emails"):
        return None
    return NewsConsent(status=SubscriberStatus.PENDING, version=UNKNOWN_VERSION,
                       opted_in_at=opted_in_at, source="ghost")


def _own_news(row: Row, created_at, now, time_of) -> NewsConsent | None:
    word = row.get("news_status").lower()
    if not word:
        return None
    status = _NEWS_STATUS.get(word)
    if status is None:
        raise RowRefused(f"news_status {row.get('news_status')!r} is not one of "
                         "subscribed, pending, unsubscribed")
    version = row.get("news_consent_version") or UNKNOWN_VERSION
    source = row.get("news_opt_in_source") or "import"
    if len(version) > 40 or len(source) > 200:
        raise RowRefused("news_consent_version or news_opt_in_source is too long")
    opted_in = time_of("news_opt_in_at") or created_at or now
    confirmed_at = time_of("news_confirmed_at")
    confirmation_source = row.get("news_confirmation_source")[:200] or None
    if status is SubscriberStatus.CONFIRMED and not (confirmed_at and confirmation_source):
        # Subscribed without the evidence of a confirmation: asked, not confirmed.
        status, confirmed_at, confirmation_source = SubscriberStatus.PENDING, None, None
    if status is SubscriberStatus.PENDING:
        confirmed_at = confirmation_source = None
    unsubscribed_at = None
    if status is SubscriberStatus.UNSUBSCRIBED:
        unsubscribed_at = time_of("news_unsubscribed_at") or now
    return NewsConsent(status=status, version=version, opted_in_at=opted_in, source=source,
                       confirmed_at=confirmed_at, confirmation_source=confirmation_source,
                       unsubscribed_at=unsubscribed_at)


# -- writing a batch of rows ------------------------------------------------------------------

_SUPPORTER = Supporter.__table__
_SUBSCRIBER = NewsSubscriber.__table__
#: A supporter's columns a row sets when its cell is not empty (the times apart).
_TEXTS = ("name", "note", "labels", *_ADDRESS)
#: What a batch looks up of the supporters and subscribers already here, by email.
_SUPPORTERS_HERE = select(Supporter.id, Supporter.email, Supporter.created_at,
                          Supporter.comped_until, *(getattr(Supporter, c) for c in _TEXTS))
_SUBSCRIBERS_HERE = select(NewsSubscriber.email, NewsSubscriber.status,
                           NewsSubscriber.supporter_id, NewsSubscriber.confirm_sent_at)

@dataclass
class SupportersImport:
    """The row handler, a batch at a time: :meth:`prepare` looks up the batch's supporters,
    subscribers and follows already here (a query each), each row is then checked and its
    changes queued (:meth:`__call__`, no query unless it names a Stripe subscription), and
    :meth:`write` writes the batch's new rows in multi-row INSERTs and its changes in UPDATEs
    run for many rows at once. ``provider``: where subscriptions are read (None: a row naming
    one is refused); ``match_by_email``: a row with no Stripe ids looks its customer up by
    email; ``send_opt_in(subscriber)``: called for each pending subscriber the file names that
    was never asked (None: nothing sent); ``dry_run``: Stripe is read, never written."""

    file_name: str
    ghost: bool
    zone: ZoneInfo
    now: datetime
    dry_run: bool
    currency: str
    org_name: str = ""
    provider: PaymentProvider | None = None
    match_by_email: bool = False
    send_opt_in: Callable[[NewsSubscriber], None] | None = None

    def __post_init__(self) -> None:
        self._categories: dict[str, set[int]] | None = None  # slug or lowered name -> ids
        self._here: dict = {}  # email -> the supporter here (a row of _SUPPORTERS_HERE)
        self._subscribers: dict = {}  # email -> the subscriber here
        self._follows: dict[int, set[int]] = {}  # supporter id -> the categories followed
        self._ids: dict[str, int] = {}  # email -> supporter id, this batch's
        self._growing = GrowingTables(_SUPPORTER, _SUBSCRIBER, Follow.__table__)
        self._queue()

    def _queue(self) -> None:
        self._new: list[dict] = []
        self._changed: list[dict] = []
        self._new_subscribers: list[dict] = []
        self._changed_subscribers: list[dict] = []
        self._new_follows: list[tuple[str, int]] = []  # (email, category id)
        self._ask: list[str] = []  # emails to send the opt-in mail to

    def prepare(self, rows: list[Row]) -> None:
        """What is here already of the batch's rows: their supporters and subscribers (by
        email), and the follows of those whose rows name categories."""
        connection = db.session.connection()
        emails = list({email for row in rows if (email := row.get("email").lower())})
        self._here = {r.email: r for r in connection.execute(
            _SUPPORTERS_HERE.where(among(Supporter.email, emails)))} if emails else {}
        self._ids = {email: r.id for email, r in self._here.items()}
        self._subscribers = {r.email: r for r in connection.execute(
            _SUBSCRIBERS_HERE.where(among(NewsSubscriber.email, emails)))} if emails else {}
        following = [here.id for row in rows if row.get("followed_categories")
                     and (here := self._here.get(row.get("email").lower()))]
        self._follows = {}
        if following:
            for supporter_id, category_id in connection.execute(
                    select(Follow.supporter_id, Follow.category_id)
                    .where(among(Follow.supporter_id, following))):
                self._follows.setdefault(supporter_id, set()).add(category_id)

    def __call__(self, row: Row) -> Outcome:
        # Every check first (each refusal is a RowRefused), then the changes are queued: a
        # refused row has queued nothing, so the rows run without a savepoint each
        # (run_import's contract).
        data = parse_row(row, ghost=self.ghost, zone=self.zone, now=self.now)
        categories = self._category_ids(data.categories)
        subscription = self._subscription(data)
        here = self._here.get(data.email)
        adoption = (self._check_plan(here.id if here else None, subscription)
                    if subscription else None)
        if here is None:
            self._new.append(_new_supporter(data, self.now))
            changed = True
        else:
            changes = _supporter_changes(here, data)
            if changes:
                self._changed.append({"id": here.id, **changes})
            changed = bool(changes)
        followed = self._follows.get(here.id, set()) if here else set()
        new_follows = [c for c in categories if c not in followed]
        self._new_follows += [(data.email, c) for c in new_follows]
        changed |= bool(new_follows)
        changed |= self._news(data, row.line)
        if adoption is not None:
            self.write()  # the batch so far, this row too: its plan needs the supporter's id
            changed |= self._adopt(self._ids[data.email], data, subscription, *adoption)
        if here is None:
            return Outcome.CREATE
        return Outcome.UPDATE if changed else Outcome.UNCHANGED

    def _category_ids(self, keys: tuple[str, ...]) -> list[int]:
        """The categories named by slug or name (case-insensitively); an unknown one refuses
        the row, naming it. All categories are read once an import (there are few)."""
        if not keys:
            return []
        if self._categories is None:
            self._categories = {}
            for category_id, slug, name in db.session.execute(
                    select(Category.id, Category.slug, Category.name)):
                for key in (slug, name.lower()):
                    self._categories.setdefault(key, set()).add(category_id)
        unknown = [key for key in keys if key not in self._categories]
        if unknown:
            raise RowRefused(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} "
                             f"{', '.join(unknown)}")
        return list(dict.fromkeys(c for key in keys for c in sorted(self._categories[key])))

    # -- the daily email ------------------------------------------------------------------

    def _news(self, data: SupporterRow, line: int) -> bool:
        consent = data.news
        if consent is None:
            return False
        here = self._subscribers.get(data.email)
        if here is None:
            self._new_subscribers.append({
                "email": data.email, "status": consent.status,
                "consent_version": consent.version, "consented_at": consent.opted_in_at,
                "consent_source": consent.source, "confirmed_at": consent.confirmed_at,
                "confirmation_source": consent.confirmation_source,
                "unsubscribed_at": consent.unsubscribed_at, "consent_file": self.file_name,
                "consent_line": line})
            status, asked = consent.status, None
        else:
            changes: dict = {}
            status, asked = here.status, here.confirm_sent_at
            if status is SubscriberStatus.UNSUBSCRIBED:
                pass  # never subscribed again by a file
            elif consent.status is SubscriberStatus.UNSUBSCRIBED:
                status = SubscriberStatus.UNSUBSCRIBED
                changes = {"status": status, "unsubscribed_at": consent.unsubscribed_at,
                           "consent_file": self.file_name, "consent_line": line}
            elif (status is SubscriberStatus.PENDING
                  and consent.status is SubscriberStatus.CONFIRMED):
                status = SubscriberStatus.CONFIRMED
                changes = {"status": status, "consent_version": consent.version,
                           "consented_at": consent.opted_in_at,
                           "consent_source": consent.source,
                           "confirmed_at": consent.confirmed_at,
                           "confirmation_source": consent.confirmation_source,
                           "consent_file": self.file_name, "consent_line": line}
            if here.supporter_id is None:
                changes["supporter_id"] = None  # this row's supporter, once written
            if changes:
                self._changed_subscribers.append({"email": data.email, **changes})
        if (self.send_opt_in is not None and status is SubscriberStatus.PENDING
                and asked is None):
            self._ask.append(data.email)
            return True
        return here is None or bool(changes)

    # -- the batch's writes -------------------------------------------------------------------

    def write(self) -> None:
        """Write what the rows so far queued: new supporters, their changes, subscribers,
        follows (``run_import``'s ``before_commit``, and before a plan is adopted), then send
        the opt-in mails asked for."""
        connection = db.session.connection()
        if self._new:
            insert_many(_SUPPORTER, self._new)
            self._ids.update(connection.execute(select(Supporter.email, Supporter.id).where(
                among(Supporter.email, (values["email"] for values in self._new)))).all())
        _update_many(connection, _SUPPORTER, self._changed, key="id")
        if self._new_subscribers:
            insert_many(_SUBSCRIBER, [
                {**values, "supporter_id": self._ids[values["email"]]}
                for values in self._new_subscribers])
        for values in self._changed_subscribers:
            if "supporter_id" in values:
                values["supporter_id"] = self._ids[values["email"]]
        _update_many(connection, _SUBSCRIBER, self._changed_subscribers, key="email")
        if self._new_follows:
            insert_many(Follow.__table__, [
                {"supporter_id": self._ids[email], "category_id": category_id,
                 "created_at": self.now} for email, category_id in self._new_follows])
        self._growing.wrote(len(self._new) + len(self._new_subscribers)
                            + len(self._new_follows))
        ask = self._ask
        self._queue()
        if ask:
            for subscriber in db.session.scalars(
                    select(NewsSubscriber).where(among(NewsSubscriber.email, ask))
                    .order_by(NewsSubscriber.id)):
                self.send_opt_in(subscriber)

    # -- Stripe -----------------------------------------------------------------------------

    def _subscription(self, data: SupporterRow) -> ProviderSubscription | None:
        """The live subscription the row gives by: the one it names; else the newest of its
        customer's; else (``match_by_email``) the newest of any customer with its email."""
        if not (data.subscription_id or data.customer_id or self.match_by_email):
            return None
        if self.provider is None:
            raise RowRefused("it names a Stripe customer or subscription, and Stripe is not "
                             "the payment provider here")
        try:
            if data.subscription_id:
                found = self.provider.subscription(data.subscription_id)
                if found is None:
                    raise RowRefused(f"Stripe has no subscription {data.subscription_id} in "
                                     "this account")
                if data.customer_id and found.customer_id != data.customer_id:
                    raise RowRefused(f"subscription {found.id} belongs to customer "
                                     f"{found.customer_id}, not {data.customer_id}")
                if not found.live:
                    raise RowRefused(f"subscription {found.id} is {found.status} at Stripe: "
                                     "nothing to adopt (leave stripe_subscription_id empty "
                                     "to import the supporter alone)")
                return found
            customers = ([data.customer_id] if data.customer_id
                         else self.provider.customers_by_email(data.email))
            live = [s for customer in customers
                    for s in self.provider.customer_subscriptions(customer) if s.live]
        except ProviderError as exc:
            raise RowRefused(f"Stripe: {exc}") from None
        return max(live, key=lambda s: (s.created, s.id), default=None)

    def _check_plan(self, supporter_id: int | None, subscription: ProviderSubscription
                    ) -> tuple[RecurringPlan | None, dict]:
        """Whether the subscription can be a plan of this supporter (None: new): the plan
        here already (None: none yet) and the plan's values as Stripe has them; raises
        RowRefused."""
        frequency = _INTERVALS.get((subscription.interval, subscription.interval_count))
        if frequency is None or subscription.items != 1:
            raise RowRefused(f"subscription {subscription.id} is not one monthly or yearly "
                             "price: it cannot be a plan here")
        if subscription.discounted:
            # Its invoices would charge less than the plan, and be refused as not matching it.
            raise RowRefused(f"subscription {subscription.id} has a discount: end it at Stripe "
                             "first, or leave the subscription out")
        if subscription.currency not in KNOWN_CURRENCIES or subscription.amount <= 0:
            raise RowRefused(f"subscription {subscription.id} charges "
                             f"{subscription.amount} {subscription.currency or '?'}")
        if subscription.period_end is None:
            raise RowRefused(f"subscription {subscription.id} has no current period")
        plan = db.session.scalar(select(RecurringPlan).where(
            RecurringPlan.provider == self.provider.name,
            RecurringPlan.provider_subscription_id == subscription.id))
        if plan is not None and (supporter_id is None or plan.supporter_id != supporter_id):
            raise RowRefused(f"subscription {subscription.id} is already the plan of another "
                             "supporter here")
        return plan, {"status": _LIVE_STATUS[subscription.status],
                      "amount": subscription.amount, "currency": subscription.currency,
                      "frequency": frequency, "next_charge_at": subscription.period_end,
                      "ends_at": subscription.ends_at}

    def _adopt(self, supporter_id: int, data: SupporterRow,
               subscription: ProviderSubscription, plan: RecurringPlan | None,
               values: dict) -> bool:
        """The subscription as a plan here (checked by :meth:`_check_plan`), created once;
        later runs bring its status, amount and end in line with Stripe's."""
        changed = False
        if plan is None:
            campaign = imported_campaign(data.campaign or IMPORTED_CAMPAIGN,
                                         currency=self.currency, now=self.now,
                                         org_name=self.org_name)
            plan = RecurringPlan(
                supporter_id=supporter_id, campaign_id=campaign.id, fee_covered=0,
                provider=self.provider.name, provider_subscription_id=subscription.id,
                provider_customer_id=subscription.customer_id,
                started_at=subscription.started_at or subscription.created, periods_paid=0,
                **values)
            db.session.add(plan)
            db.session.flush()
            changed = True
        elif plan.status is not PlanStatus.CANCELED:
            if values.pop("amount") != plan.total:
                plan.amount, plan.fee_covered = subscription.amount, 0
                changed = True
            for name, value in values.items():
                if getattr(plan, name) != value:
                    setattr(plan, name, value)
                    changed = True
        tag = {"newsfund_plan": str(plan.id)}
        if subscription.metadata.get("newsfund_plan") != tag["newsfund_plan"]:
            changed = True
            if not self.dry_run:
                try:
                    self.provider.tag_subscription(
                        subscription.id, tag, idempotency_key=f"adopt-{subscription.id}-"
                                                              f"{plan.id}")
                except ProviderError as exc:
                    # After this row's writes: stop here (the batch under way is rolled
                    # back); the rows before it are in, and a rerun goes on from them.
                    raise ImportFileError(
                        f"Stripe could not tag subscription {subscription.id} with its plan "
                        f"({exc}) The import stopped; the rows committed before it stay. Run "
                        "the file again.") from None
        return changed


def _new_supporter(data: SupporterRow, now: datetime) -> dict:
    """A new supporter's columns (the same keys for every row: one statement for a batch)."""
    return {"email": data.email, "name": data.name, "note": data.note or None,
            "labels": data.labels or None,
            **{name: data.address.get(name) for name in _ADDRESS},
            "created_at": data.created_at or now, "comped_until": data.comped_until}


def _supporter_changes(here, data: SupporterRow) -> dict:
    """The file's values over ours (``here``: the supporter's row): the columns that change.
    An empty cell keeps what is here. The earliest creation time wins (a supporter may be
    here already from a gift)."""
    changes = {}
    wanted = {"name": data.name, "note": data.note, "labels": data.labels, **data.address}
    for name, value in wanted.items():
        if value and getattr(here, name) != value:
            changes[name] = value
    if data.created_at and here.created_at and data.created_at < here.created_at:
        changes["created_at"] = data.created_at
    if data.comped_until and here.comped_until != data.comped_until:
        changes["comped_until"] = data.comped_until
    return changes


def _update_many(connection, table, changes: list[dict], *, key: str) -> None:
    """Apply ``changes`` (each the row's ``key`` column and the columns it changes): the rows
    changing the same columns together, in one UPDATE run for all of them."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for values in changes:
        groups.setdefault(tuple(sorted(set(values) - {key})), []).append(values)
    for columns, group in groups.items():
        # Bound under other names: SQLAlchemy keeps the columns' own for itself.
        statement = (table.update().where(table.c[key] == bindparam("k"))
                     .values({name: bindparam(f"v_{name}") for name in columns}))
        connection.execute(statement, [
            {"k": values[key], **{f"v_{name}": values[name] for name in columns}}
            for values in group])


def imported_campaign(slug: str, *, currency: str, now: datetime, org_name: str) -> Campaign:
    """The campaign imported plans are given to: the one with this slug, else a new, ended,
    unpublished, imported one, as ``flask finance import`` makes (its page shows nothing; the
    plans' later gifts are counted under it). The default one is titled with the
    organisation's name: donors read "your monthly gift to <title>" in their mail."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        title = org_name if slug == IMPORTED_CAMPAIGN else slug
        campaign = Campaign(slug=slug, title=title[:200], kind=CampaignKind.GENERAL,
                            signatory_name="", starts_at=now - timedelta(seconds=1),
                            ends_at=now, goal_amount=1, currency=currency, published=False,
                            imported_at=now)
        db.session.add(campaign)
        db.session.flush()
    return campaign


def import_supporters(source, *, file_name: str, max_bytes: int, dry_run: bool, zone: ZoneInfo,
                      now: datetime, currency: str, org_name: str,
                      provider: PaymentProvider | None,
                      commit: Callable[[], None], actor: audit.Actor,
                      match_by_email: bool = False,
                      send_opt_in: Callable[[NewsSubscriber], None] | None = None,
                      progress=None, batch: int = BATCH) -> ImportReport:
    """Import one file (a path or a binary stream) and return its report; a real run is
    audited. ``currency`` and ``org_name``: the imported campaign's currency (its goal is
    never shown) and title (:func:`imported_campaign`). Raises
    ImportFileError for a file that cannot be imported at all (nothing written)."""
    csv_file, ghost = open_supporters_csv(source, max_bytes=max_bytes)
    handler = SupportersImport(
        file_name=file_name[:255], ghost=ghost, zone=zone, now=now, dry_run=dry_run,
        currency=currency, org_name=org_name, provider=provider,
        match_by_email=match_by_email,
        send_opt_in=None if dry_run else send_opt_in)
    with csv_file:
        report = run_import(csv_file, handler, dry_run=dry_run, commit=commit, key=email_key,
                            key_name="email", progress=progress, savepoints=False,
                            batch=batch, prepare=handler.prepare, before_commit=handler.write)
    if not dry_run:
        audit.record_change(actor, "supporters.import", "import", file_name[:100], after={
            "format": "ghost" if ghost else "own", "opt_in_sent": send_opt_in is not None,
            **{outcome.value: n for outcome, n in report.counts.items()}})
        commit()
    return report


def opt_in_sender(config, *, now: datetime, link: Callable[..., str]):
    """``send_opt_in`` for :func:`import_supporters`: the daily email's confirmation mail, as
    its sign-up form sends it. ``link(endpoint, **values)`` builds an external address
    (``app.urls.external_url``)."""
    signer = Signer.from_config(config)

    def send(subscriber: NewsSubscriber) -> None:
        send_confirmation(
            subscriber, signer=signer,
            confirm_url=lambda token: link("news.confirm", token=token),
            unsubscribe_url=lambda token: link("news.unsubscribe_page", token=token),
            mail_from=config["NEWS_MAIL_FROM"],
            confirm_days=config["NEWS_CONFIRM_MAX_AGE_SECONDS"] // 86400, now=now)

    return send


#: The switches the staff import page offers with the upload (``app.imports.kinds``).
OPTIONS = (
    ("send_opt_in", "Send the daily email's opt-in mail to the subscribers in the file who "
                    "have not confirmed (nothing is sent without this)"),
    ("match_stripe_by_email", "For rows with no Stripe ids, find the Stripe customer by email "
                              "and adopt their live subscription"),
)


def run_supporter_import(source, *, dry_run: bool, actor: audit.Actor, config,
                         options, commit: Callable[[], None], name: str,
                         progress=None) -> ImportReport:
    """:func:`import_supporters` as the staff pages' job runs it (``app.imports.kinds``): its
    collaborators built from the app's settings (the payment provider, the opt-in mail's
    links from ``PUBLIC_URL``), the switches from ``options``."""
    now = utcnow()
    return import_supporters(
        source, file_name=name, max_bytes=config["IMPORT_MAX_BYTES"], dry_run=dry_run,
        zone=ZoneInfo(config["ORG_TIMEZONE"]), now=now, currency=config["CURRENCIES"][0],
        org_name=config["ORG_NAME"],
        provider=provider_from_config(config), commit=commit, actor=actor,
        match_by_email=bool(options.get("match_stripe_by_email")),
        send_opt_in=opt_in_sender(config, now=now, link=external_url)
        if options.get("send_opt_in") else None, progress=progress)
