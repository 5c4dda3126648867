"""The news package's part in "download my data" and "delete my account": the categories a
supporter follows and the daily-email subscription of their address, with its consent record."""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from app.accounts.models import Supporter
from app.accounts.personal_data import eraser, exporter
from app.extensions import db
from app.news.models import Category, DigestSend, Follow, NewsSubscriber


def _subscriptions(supporter: Supporter) -> list[NewsSubscriber]:
    return list(db.session.scalars(select(NewsSubscriber).where(or_(
        NewsSubscriber.supporter_id == supporter.id,
        NewsSubscriber.email == supporter.email.lower()))))


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@exporter("news")
def export_news(supporter: Supporter) -> dict:
    follows = db.session.execute(
        select(Category.slug, Category.name, Follow.created_at)
        .join(Follow, Follow.category_id == Category.id)
        .where(Follow.supporter_id == supporter.id).order_by(Category.slug)).all()
    subscriptions = []
    for s in _subscriptions(supporter):
        sent = db.session.scalars(select(DigestSend.digest_date).where(
            DigestSend.subscriber_id == s.id, DigestSend.sent_at.is_not(None))
            .order_by(DigestSend.digest_date)).all()
        subscriptions.append({
            "email": s.email, "status": s.status.value, "consent_version": s.consent_version,
            "consented_at": _iso(s.consented_at), "consent_source": s.consent_source,
            "confirmed_at": _iso(s.confirmed_at),
            "confirmation_source": s.confirmation_source,
            "imported_from": f"{s.consent_file}, line {s.consent_line}" if s.consent_file
            else None,
            "unsubscribed_at": _iso(s.unsubscribed_at),
            "daily_emails_sent_on": [d.isoformat() for d in sent],
        })
    return {"follows": [{"slug": slug, "name": name, "since": _iso(since)}
                        for slug, name, since in follows],
            "daily_email": subscriptions}


@eraser("news")
def erase_news(supporter: Supporter) -> None:
    """Follows and subscriptions go entirely: nothing is sent to an erased person, so there is
    no consent left to prove."""
    db.session.execute(delete(Follow).where(Follow.supporter_id == supporter.id))
    ids = [s.id for s in _subscriptions(supporter)]
    if ids:
        db.session.execute(delete(DigestSend).where(DigestSend.subscriber_id.in_(ids)))
        db.session.execute(delete(NewsSubscriber).where(NewsSubscriber.id.in_(ids)))
