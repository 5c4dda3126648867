"""Shared column types, the clock, and how the app talks to SQLite (the declarative base and
its naming convention are in ``app.extensions``, beside the ``db`` built on them)."""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from select import POLLIN, poll

from flask import Flask, g, has_app_context, request
from sqlalchemy import ARRAY, DateTime, any_, bindparam, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from app.extensions import db


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones, so values are stored naive in UTC and come back aware; naive input
    is refused, so a local time can never slip in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    """SQLite: WAL, enforced foreign keys, a busy timeout, and transactions SQLAlchemy controls.

    Python's sqlite3 module otherwise begins transactions on its own and breaks SAVEPOINT, which
    the services use to survive a duplicate insert (SQLAlchemy's documented recipe).
    """
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def this_process() -> str:
    """``host:pid``: who holds a claim this process makes (a scheduler's slot, a message
    being sent), for :func:`claimant_gone`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimant_gone(claimant: str | None) -> bool:
    """Whether the process that made a claim (:func:`this_process`) is known to be gone: it
    ran on this machine and has ended (killed with its worker, say). A claim made on another
    machine, or by a process still running, is not known to be abandoned: it holds until it
    expires."""
    host, _, pid = (claimant or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # another user's process; not a pid at all
        pass
    return False


def insert(model):
    """An INSERT for the database the session is on, PostgreSQL's or SQLite's (the two the app
    runs on), so ``.on_conflict_do_nothing()`` or ``.on_conflict_do_update()`` can follow."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[
        db.session.get_bind().dialect.name](model)


def single_statement_connection():
    """The session's connection for a transaction that is one statement (a webhook's event
    stored for a worker): on a database server in autocommit, so that the statement commits
    itself, without the round trips of ``BEGIN`` and ``COMMIT``; the session's commit then
    has nothing to do. On SQLite, whose transactions are ours (:func:`_sqlite_connect`), in a
    session that has begun already, or in one bound to a connection (a test's, inside its
    transaction), its connection as usual."""
    session = db.session()
    bind = session.get_bind()
    if session.in_transaction() or not isinstance(bind, Engine) or bind.dialect.name == "sqlite":
        return session.connection()
    return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def insert_all(objects: Sequence, *, key: str) -> None:
    """Insert new objects of one model at once (a batch's charges and receipts) without the
    unit of work's cost per object: written by :func:`insert_many` (``COPY`` on PostgreSQL),
    then their ids read back by ``key``, a column unique among them. They stay out of the
    session (transient): to read, as what was written, not to change. (An ``INSERT ...
    RETURNING`` of a hundred rows was a statement of 1,500 parameters that psycopg parsed
    anew each time: a tenth of a webhook worker's CPU.)"""
    if not objects:
        return
    db.session.flush()  # what an ORM statement would do first
    model = type(objects[0])
    columns = {attr.key: attr.columns[0].key for attr in sa_inspect(model).column_attrs}
    alike: dict[tuple[str, ...], list[dict]] = {}  # rows by the columns they give
    for obj in objects:
        row = {columns[name]: value for name, value in sa_inspect(obj).dict.items()
               if name in columns}
        alike.setdefault(tuple(row), []).append(row)
    for rows in alike.values():
        insert_many(model.__table__, rows)
    column = getattr(model, key)
    ids = dict(db.session.execute(select(column, model.id).where(
        among(column, [getattr(obj, key) for obj in objects]))).all())
    for obj in objects:
        obj.id = ids[getattr(obj, key)]


def among(column, values):
    """``column IN (values)`` for a batch's lookups. On PostgreSQL it is ``column =
    ANY(:values)``, one array parameter: the statement's text is the same short one however
    many values, so psycopg converts and prepares it once (an IN list of 500 parameters was
    parsed again in Python at every run, and planned again by PostgreSQL)."""
    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def insert_many(table, rows: list[dict]) -> None:
    """INSERT ``rows`` (dicts with the same keys: columns and their values) into ``table``, in
    the session's transaction. On PostgreSQL through ``COPY ... FROM STDIN`` (psycopg dumps the
    rows in C: a fraction of what an executemany costs per row in SQLAlchemy and psycopg);
    elsewhere an executemany. Either way each value goes through its column type's bind
    processing (an enum by its value, a time in UTC) and a column left out takes its default,
    the Python-side one too. Nothing comes back: read the new ids by a unique column."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    from psycopg import sql

    given = list(rows[0])
    defaults = [(column.name, column.default) for column in table.columns
                if column.name not in given and column.default is not None
                and (column.default.is_scalar or column.default.is_callable)]
    names = given + [name for name, _ in defaults]
    # The columns whose type converts a value (an enum, a time), by place: most do not.
    processors = [(i, process) for i, name in enumerate(names)
                  if (process := table.c[name].type.bind_processor(dialect)) is not None]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, names)))
    with connection.connection.driver_connection.cursor() as cursor, \
            cursor.copy(statement) as copy:
        for row in rows:
            values = [row[name] for name in given]
            values += [default.arg if default.is_scalar else default.arg(None)
                       for _, default in defaults]
            for i, process in processors:
                if values[i] is not None:
                    values[i] = process(values[i])
            copy.write_row(values)


class GrowingTables:
    """PostgreSQL's statistics of the tables a bulk import fills, kept in step with their
    size: ``ANALYZE`` each time the rows written have doubled (from ``first``), about ten
    times for a million rows. Without it, a batch's lookup planned while a table was nearly
    empty (a sequential scan) went on scanning the table as it grew, until autovacuum analysed
    it: on a busy machine not before the import ended (100,000 members: 86 s, against 18 when
    autovacuum came early). Nothing to do on SQLite, whose lookups by a unique column take its
    index whatever the statistics."""

    def __init__(self, *tables, first: int = 1000):
        self.tables = tables
        self.written = 0
        self._next = first

    def wrote(self, rows: int) -> None:
        self.written += rows
        if self.written < self._next:
            return
        self._next = 2 * self.written
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "ANALYZE " + ", ".join(connection.dialect.identifier_preparer.format_table(t)
                                       for t in self.tables))


def expect_writes() -> None:
    """Mark this application context (a background job's, a request's that may write, a
    :func:`writing_command`'s) as one that writes: on SQLite its transactions take the write
    lock up front."""
    g.expects_writes = True


def writing_command(command: Callable) -> Callable:
    """Mark a ``flask`` command that writes (put it under the ``@....command(...)`` line): its
    transactions on SQLite take the write lock up front, as a job's do, so two runs at once (or
    one beside the web) wait their turn instead of failing with "database is locked".

    Read-only commands (exports, reports) stay unmarked: one holding the write lock would stall
    every gift given meanwhile. ``tests/test_cli_writes.py`` holds which command is which.
    """

    @functools.wraps(command)
    def run(*args, **kwargs):
        # Only for the command's run: a test's application context, which the CLI runner
        # reuses, is left as it was.
        before = g.get("expects_writes", False)
        expect_writes()
        try:
            return command(*args, **kwargs)
        finally:
            g.expects_writes = before

    run.writes = True  # copied onto the command's callback by Flask's with_appcontext
    return run


def init_app(app: Flask) -> None:
    """A request that may write (POST and the like) is marked by :func:`expect_writes` before
    anything else it does, so the engine event below needs no request. A database server's
    connections are tested before use (:func:`watch_connections`)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _mark_writing_request)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name != "sqlite":  # a file's connections cannot go stale
                watch_connections(engine)


#: Seconds a pooled connection may sit in the pool and still be taken without a ping.
PING_AFTER_IDLE = 10.0


def watch_connections(engine: Engine) -> None:
    """Test each pooled connection of a database server before it is used again, so that one
    the server dropped (a restart, a failover, a terminated backend) is replaced, not failed
    on: what SQLAlchemy's ``pool_pre_ping`` does, without its round trip for a connection
    back in the pool for less than :data:`PING_AFTER_IDLE` seconds, which a busy process's
    connections always are (a webhook's request took five round trips, one of them this
    ping). A server that ends a connection says so and closes it, so such a connection has
    something to read: it is pinged, as is one idle longer (a firewall may have cut it
    without a word). A failed ping replaces it and every connection made before it, as
    ``pool_pre_ping`` does."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection, record):
        record.info["returned"] = time.monotonic()  # ``info`` is emptied with a new connection

    @event.listens_for(engine, "checkout")
    def taken(dbapi_connection, record, proxy):
        returned = record.info.get("returned")
        if returned is None:  # made for this checkout
            return
        if time.monotonic() - returned < PING_AFTER_IDLE and _nothing_to_read(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise sa_exc.InvalidatePoolError(f"connection lost: {exc}") from exc


def _nothing_to_read(dbapi_connection) -> bool:
    """Whether an idle connection's socket holds nothing: one system call, no round trip."""
    if dbapi_connection.closed:
        return False
    poller = poll()
    poller.register(dbapi_connection.fileno(), POLLIN)
    return not poller.poll(0)


def _mark_writing_request() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        expect_writes()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """A context marked by :func:`expect_writes` (a request that may write, a job, a command
    that writes) takes SQLite's write lock up front.

    A deferred transaction that reads and then writes fails at once with "database is locked"
    when another writer got in between; an immediate one waits its turn (busy_timeout). Reads
    stay deferred, so pages never queue behind each other.
    """
    if connection.dialect.name != "sqlite":
        return
    writes = has_app_context() and g.get("expects_writes", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def enum_column(enum_cls, **kwargs):
    """Store a Python enum by its value in a VARCHAR, so new members need no migration."""
    from sqlalchemy import Enum

    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        **kwargs,
    )
