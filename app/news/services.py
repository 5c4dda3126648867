"""The rules of news: categories, follows, the articles a reader sees, and the daily-email
subscription (consent, double opt-in, one-click unsubscribe) with its signed links.

Services take plain arguments (the supporter, the settings, the time), add and flush, and never
commit: the view or command that owns the transaction does (``app.jobs.commit``). The
confirmation email is queued to go out after that commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.accounts.models import Supporter
from app.config import signing_keys
from app.extensions import db
from app.mail import queue_email
from app.news.models import (
    Article,
    Category,
    CategoryKind,
    Follow,
    NewsSubscriber,
    SubscriberStatus,
    article_category,
)

CONFIRM_SALT = "news-confirm"
UNSUBSCRIBE_SALT = "news-unsubscribe"


class NewsError(Exception):
    """A request that breaks a rule; ``message`` is shown to the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------ categories


def slugify(text: str) -> str:
    """"The Gulf and the UAE" -> "the-gulf-and-the-uae"."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def list_categories() -> list[Category]:
    """Regions first, then topics, each in the staff's order."""
    return list(db.session.scalars(
        select(Category).order_by(Category.kind, Category.position, Category.name)))


def get_category(slug: str) -> Category | None:
    return db.session.scalar(select(Category).where(Category.slug == slug.lower()))


def add_category(name: str, kind: CategoryKind, *, slug: str | None = None,
                 position: int | None = None) -> tuple[Category, bool]:
    """Create the category, or rename the one with this slug; returns (category, created)."""
    name = " ".join(name.split())
    slug = slugify(slug or name)
    if not name or not slug:
        raise NewsError("A category needs a name made of letters or digits.")
    if len(slug) > 80 or len(name) > 120:
        raise NewsError("Keep the name under 120 characters and the slug under 80.")
    category = get_category(slug)
    if category is not None:
        category.name, category.kind = name, kind
        if position is not None:
            category.position = position
        return category, False
    if position is None:
        position = db.session.scalar(
            select(func.coalesce(func.max(Category.position), -1) + 1)
            .where(Category.kind == kind))
    category = Category(slug=slug, name=name, kind=kind, position=position)
    db.session.add(category)
    db.session.flush()
    return category, True


def remove_category(slug: str) -> bool:
    """Delete the category; its follows and article tags go with it (the articles stay)."""
    category = get_category(slug)
    if category is None:
        return False
    db.session.execute(delete(Follow).where(Follow.category_id == category.id))
    db.session.execute(delete(article_category)
                       .where(article_category.c.category_id == category.id))
    db.session.delete(category)
    db.session.flush()
    return True


# ------------------------------------------------------------------ follows


def followed_category_ids(supporter_id: int) -> set[int]:
    return set(db.session.scalars(
        select(Follow.category_id).where(Follow.supporter_id == supporter_id)))


def set_follow(supporter_id: int, category: Category, follow: bool) -> bool:
    """Follow or unfollow; the same request twice changes nothing the second time.

    Takes the wanted state rather than toggling, so a double-clicked button or a replayed form
    cannot undo itself. Returns the resulting state.
    """
    if follow:
        exists = db.session.get(Follow, (supporter_id, category.id))
        if exists is None:
            try:
                with db.session.begin_nested():
                    db.session.add(Follow(supporter_id=supporter_id, category_id=category.id))
            except IntegrityError:  # the same follow from a concurrent request
                pass
    else:
        db.session.execute(delete(Follow).where(Follow.supporter_id == supporter_id,
                                                Follow.category_id == category.id))
    return follow


# ------------------------------------------------------------------ articles


def recent_articles(category_ids: set[int] | None, *, limit: int = 30) -> list[Article]:
    """The newest articles in any of these categories; with None, the newest of all, the
    newsroom's top stories first among those of the same day."""
    query = select(Article).options(selectinload(Article.categories))
    if category_ids is not None:
        if not category_ids:
            return []
        query = query.where(Article.id.in_(
            select(article_category.c.article_id)
            .where(article_category.c.category_id.in_(category_ids))))
    query = query.order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
    return list(db.session.scalars(query))


# ------------------------------------------------------------------ subscriptions


@dataclass(frozen=True)
class Consent:
    """What the person agreed to, where, and when."""

    version: str
    source: str
    at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def mask_email(email: str) -> str:
    """"noa.levi@example.org" -> "n•••••••@example.org": enough to recognise one's own address
    on a page that anyone holding the link can open."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 2)}@{domain}"


def email_fingerprint(email: str) -> str:
    """A short digest of the address, signed into links so that a link can never act on a
    different address, even if a row's id were ever reused."""
    return hashlib.sha256(email.encode()).hexdigest()[:12]


class Signer:
    """The signed links of the daily email, one salt per purpose: a confirmation link cannot be
    used to unsubscribe anyone and the other way round."""

    def __init__(self, secret_key: str | list[str]):
        self._confirm = URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT)
        self._unsubscribe = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)

    @classmethod
    def from_config(cls, config) -> Signer:
        # Links mailed before a key rotation keep working while the old key is a fallback.
        return cls(signing_keys(config))

    def confirm_token(self, subscriber: NewsSubscriber) -> str:
        return self._confirm.dumps([subscriber.id, email_fingerprint(subscriber.email)])

    def unsubscribe_token(self, subscriber_id: int, email: str) -> str:
        # No expiry: an unsubscribe link in a months-old email must still work (RFC 8058).
        return self._unsubscribe.dumps([subscriber_id, email_fingerprint(email)])

    def read_confirm(self, token: str, max_age: int) -> tuple[int, str]:
        return _payload(self._confirm.loads, token, max_age=max_age)

    def read_unsubscribe(self, token: str) -> tuple[int, str]:
        return _payload(self._unsubscribe.loads, token)


class LinkProblem(StrEnum):
    INVALID = "invalid"  # tampered, truncated, or not ours
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # well signed, but the subscription is gone


class LinkError(Exception):
    def __init__(self, problem: LinkProblem):
        super().__init__(problem.value)
        self.problem = problem


def _payload(loads, token: str, **kwargs) -> tuple[int, str]:
    try:
        value = loads(token, **kwargs)
    except SignatureExpired:
        raise LinkError(LinkProblem.EXPIRED) from None
    except BadSignature:
        raise LinkError(LinkProblem.INVALID) from None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int)
            or not isinstance(value[1], str)):
        raise LinkError(LinkProblem.INVALID)
    return value[0], value[1]


def _subscriber_for(subscriber_id: int, fingerprint: str) -> NewsSubscriber:
    subscriber = db.session.get(NewsSubscriber, subscriber_id)
    if subscriber is None or email_fingerprint(subscriber.email) != fingerprint:
        raise LinkError(LinkProblem.UNKNOWN)
    return subscriber


def subscriber_for_email(email: str) -> NewsSubscriber | None:
    return db.session.scalar(
        select(NewsSubscriber).where(NewsSubscriber.email == normalize_email(email)))


def subscriber_for_supporter(supporter_id: int, email: str) -> NewsSubscriber | None:
    """The subscription linked to the supporter (whatever address it goes to), else the one of
    their current address."""
    return db.session.scalar(
        select(NewsSubscriber).where(NewsSubscriber.supporter_id == supporter_id)
        .order_by((NewsSubscriber.status == SubscriberStatus.CONFIRMED).desc(),
                  NewsSubscriber.id.desc())
        .limit(1)) or subscriber_for_email(email)


def subscribe(email: str, consent: Consent, *, signer: Signer, confirm_url, unsubscribe_url,
              mail_from: str, confirm_days: int, resend_after: timedelta) -> NewsSubscriber:
    """Record the request and the consent, and queue the email with the confirmation link.

    The answer to the person is the same whatever the address's state, so that the form cannot
    be used to learn who subscribes: a confirmed address gets no email and no change; a pending
    one gets its link again (not more often than ``resend_after``); an unsubscribed one starts
    again from pending. ``confirm_url(token)`` and ``unsubscribe_url(token)`` build the links;
    ``confirm_days`` is how long the confirmation link lasts (said in the email).
    """
    email = normalize_email(email)
    subscriber = subscriber_for_email(email)
    if subscriber is None:
        subscriber = NewsSubscriber(email=email, status=SubscriberStatus.PENDING,
                                    consent_version=consent.version, consented_at=consent.at,
                                    consent_source=consent.source)
        try:
            with db.session.begin_nested():
                db.session.add(subscriber)
        except IntegrityError:  # the same address from a concurrent request: it sends the link
            return subscriber_for_email(email)
    elif subscriber.status is SubscriberStatus.CONFIRMED:
        return subscriber
    else:
        if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
            subscriber.status = SubscriberStatus.PENDING
            subscriber.confirmed_at = subscriber.unsubscribed_at = None
            subscriber.confirm_sent_at = None
        subscriber.consent_version = consent.version
        subscriber.consented_at = consent.at
        subscriber.consent_source = consent.source
    if subscriber.supporter_id is None:
        subscriber.supporter_id = db.session.scalar(
            select(Supporter.id).where(Supporter.email == email))
    sent = subscriber.confirm_sent_at
    if sent is not None and consent.at - sent < resend_after:
        return subscriber
    send_confirmation(subscriber, signer=signer, confirm_url=confirm_url,
                      unsubscribe_url=unsubscribe_url, mail_from=mail_from,
                      confirm_days=confirm_days, now=consent.at)
    return subscriber


def send_confirmation(subscriber: NewsSubscriber, *, signer: Signer, confirm_url,
                      unsubscribe_url, mail_from: str, confirm_days: int, now: datetime) -> None:
    """Queue the email with the confirmation link to a pending subscriber (the form's, or an
    imported subscriber staff chose to ask: ``flask supporters import --send-opt-in``)."""
    db.session.flush()
    subscriber.confirm_sent_at = now
    unsubscribe = unsubscribe_url(signer.unsubscribe_token(subscriber.id, subscriber.email))
    queue_email(
        to=subscriber.email, subject="Confirm your daily news email",
        template="news_confirm",
        dedupe_key=f"news-confirm:{subscriber.id}:{now.isoformat()}",
        headers={"From": mail_from, **list_unsubscribe_headers(unsubscribe)},
        confirm_url=confirm_url(signer.confirm_token(subscriber)),
        unsubscribe_url=unsubscribe, days=confirm_days,
    )


class ConfirmResult(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # a second click on the same link
    UNSUBSCRIBED = "unsubscribed"  # the address unsubscribed after the link was sent


def confirm_subscription(token: str, *, signer: Signer, max_age: int,
                         now: datetime) -> tuple[ConfirmResult, NewsSubscriber]:
    """Confirm the address the link was sent to. Idempotent: a replayed link says so.

    Raises :class:`LinkError` for a tampered, expired or orphaned link.
    """
    subscriber_id, fingerprint = signer.read_confirm(token, max_age)
    # Write first, read after: the single UPDATE takes SQLite's write lock at once (a GET
    # request's transaction is deferred) and is a no-op when a concurrent click got there first.
    # In a savepoint, so that a link whose address does not match leaves nothing behind.
    with db.session.begin_nested():
        changed = db.session.execute(
            update(NewsSubscriber)
            .where(NewsSubscriber.id == subscriber_id,
                   NewsSubscriber.status == SubscriberStatus.PENDING)
            .values(status=SubscriberStatus.CONFIRMED, confirmed_at=now)
        ).rowcount
        subscriber = _subscriber_for(subscriber_id, fingerprint)
    db.session.refresh(subscriber)
    if changed:
        if subscriber.supporter_id is None:
            subscriber.supporter_id = db.session.scalar(
                select(Supporter.id).where(Supporter.email == subscriber.email))
        return ConfirmResult.CONFIRMED, subscriber
    if subscriber.status is SubscriberStatus.CONFIRMED:
        return ConfirmResult.ALREADY, subscriber
    return ConfirmResult.UNSUBSCRIBED, subscriber


def subscriber_for_unsubscribe(token: str, *, signer: Signer) -> NewsSubscriber:
    """The subscription an unsubscribe link names (for the page with the button)."""
    return _subscriber_for(*signer.read_unsubscribe(token))


def unsubscribe(token: str, *, signer: Signer, now: datetime) -> tuple[bool, NewsSubscriber]:
    """Stop the daily email for the link's address; returns (changed, subscriber).

    One click, no sign-in: the signed link is the authority. A second click changes nothing.
    """
    subscriber_id, fingerprint = signer.read_unsubscribe(token)
    with db.session.begin_nested():  # as in confirm_subscription
        changed = db.session.execute(
            update(NewsSubscriber)
            .where(NewsSubscriber.id == subscriber_id,
                   NewsSubscriber.status != SubscriberStatus.UNSUBSCRIBED)
            .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now)
        ).rowcount
        subscriber = _subscriber_for(subscriber_id, fingerprint)
    db.session.refresh(subscriber)
    return bool(changed), subscriber


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs to ``url``."""
    return {"List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
