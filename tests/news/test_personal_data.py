"""A supporter's news data in "download my data", and gone with "delete my account"."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.personal_data import export_personal_data
from app.db import utcnow
from app.extensions import db
from app.news.models import Category, DigestSend, Follow, NewsSubscriber
from app.news.personal_data import erase_news
from app.news.services import set_follow
from tests.support.news import DIGEST_NOW, confirmed_subscriber, digest, verified_supporter


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_export_and_erase(stories):
    supporter = verified_supporter("noa@example.org")
    syria = db.session.scalar(select(Category).where(Category.slug == "syria"))
    set_follow(supporter.id, syria, True)
    confirmed_subscriber("noa@example.org")  # not linked: found by address
    confirmed_subscriber("someone.else@example.org")
    digest(now=DIGEST_NOW)

    exported = export_personal_data(supporter, now=utcnow())["news"]
    assert exported["follows"][0]["slug"] == "syria"
    [subscription] = exported["daily_email"]
    assert subscription["email"] == "noa@example.org"
    assert subscription["status"] == "confirmed" and subscription["consent_version"] == "test"
    assert subscription["daily_emails_sent_on"] == ["2026-11-24"]

    erase_news(supporter)
    db.session.commit()
    assert count(Follow) == 0
    assert [s.email for s in db.session.scalars(select(NewsSubscriber))] == [
        "someone.else@example.org"]
    assert count(DigestSend) == 1
