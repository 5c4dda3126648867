"""Finding and creating supporters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Supporter
from app.extensions import db


def normalize_email(email: str) -> str:
    return email.strip().lower()


def get_or_create_supporter(email: str, name: str = "") -> Supporter:
    """The supporter with this email, created if new. Safe against a concurrent insert of the
    same address: the loser of the race reads the winner's row."""
    email = normalize_email(email)
    supporter = db.session.scalar(select(Supporter).where(Supporter.email == email))
    if supporter is not None:
        if name and not supporter.name:
            supporter.name = name
        return supporter
    try:
        with db.session.begin_nested():
            supporter = Supporter(email=email, name=name)
            db.session.add(supporter)
    except IntegrityError:
        supporter = db.session.scalar(select(Supporter).where(Supporter.email == email))
    return supporter
