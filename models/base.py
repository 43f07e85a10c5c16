"""Helpers every table module shares: UTC time and dialect-neutral upserts."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import DateTime, Integer, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def utc_field(**kwargs: Any) -> Any:
    """A timezone-aware UTC timestamp column."""
    return Field(sa_type=DateTime(timezone=True), **kwargs)  # type: ignore[call-overload]


def in_ids(column: Any, ids: Iterable[int]) -> Any:
    """``column IN (…)`` for a list of integer ids, the numbers written into the statement
    when it runs (the compiled statement stays cached): a district's 2,000 unit ids as bound
    parameters cost the drivers milliseconds per statement (bench/growth.py)."""
    return column.in_(bindparam(None, [int(i) for i in ids], type_=Integer, expanding=True,
                                literal_execute=True))


READ_CACHE = "read_cache"


def read_cache(session: Session) -> dict[str, Any] | None:
    """The session's read cache, if its owner opened one (reminders.sweep does, for one
    sweep's transaction): lookups asked thousands of times in one pass (whose roles, snoozes)
    are then read once, as whole tables, instead of once per item. None: read as usual."""
    return session.info.get(READ_CACHE)


def insert_ignore(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when the row was new.

    One statement, so concurrent copies of the same key are settled by the database.
    """
    stmt = _insert_ignore(table, session.get_bind().dialect.name, tuple(sorted(values)))
    # Core through the session's connection; rowcount is -1 under psycopg, hence RETURNING
    return session.connection().execute(stmt, values).first() is not None


@functools.cache
def _insert_ignore(table: Table, dialect: str, columns: tuple[str, ...]) -> Any:
    """Built once per table and column set (dedupe and outbox inserts run per message)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    key = next(iter(table.primary_key.columns))
    # typed parameters: JSON and DateTime values must go through their column types
    return (insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
            .on_conflict_do_nothing().returning(key))
