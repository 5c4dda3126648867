"""Helpers for the tests that move the schema down and up (the ``unmigrated_app`` fixture):
what is in the database, read and committed at once, since a migration waits for the locks of
an open transaction."""

from __future__ import annotations

from sqlalchemy import inspect, text

from app.extensions import db


def rows(sql: str, **params) -> list[tuple]:
    """The rows of a query, as tuples, its transaction ended."""
    result = [tuple(row) for row in db.session.execute(text(sql), params)]
    db.session.commit()
    return result


def tables() -> set[str]:
    """The tables the database holds now (Alembic's own excepted)."""
    db.session.commit()
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def columns(table: str) -> set[str]:
    db.session.commit()
    return {c["name"] for c in inspect(db.engine).get_columns(table)}
