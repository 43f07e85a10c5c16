"""Helpers every table module shares: UTC time and dialect-neutral upserts."""
from __future__ import annotations

import functools
import json
from datetime import date, datetime, timezone
from typing import Any, Iterable

from sqlalchemy import JSON, DateTime, Integer, Table, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
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
def _insert_ignore(table: Table, dialect: str, columns: tuple[str, ...]) -> TextClause:
    """Built once per table and column set (dedupe and outbox inserts run per message)."""
    key = next(iter(table.primary_key.columns)).name
    return upsert_statement(table, dialect, columns, returning=key)


def upsert_statement(table: Table, dialect: str, columns: tuple[str, ...], *,
                     conflict: tuple[str, ...] = (), update: tuple[str, ...] = (),
                     returning: str | None = None) -> TextClause:
    """``INSERT … ON CONFLICT DO NOTHING`` (or ``DO UPDATE SET`` the ``update`` columns), as
    SQL text with typed parameters. SQLAlchemy never caches the compiled form of its
    dialects' ON CONFLICT inserts (they set ``inherit_cache = False``), so every execution
    compiled it anew: ~0.5 ms of the database thread per message, more than the rest of a
    message's SQL (bench/profile_callback.py). A ``text()`` statement is cached. The syntax is
    the same on SQLite (3.35+) and PostgreSQL; only the quoting of names differs."""
    quote = _preparer(dialect).quote
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values}) ON CONFLICT"
    if update:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
        sql += f" ({', '.join(quote(c) for c in conflict)}) DO UPDATE SET {sets}"
    else:
        sql += " DO NOTHING"
    if returning:
        sql += f" RETURNING {quote(returning)}"
    # typed parameters: JSON and DateTime values must go through their column types
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


@functools.cache
def _preparer(dialect: str) -> Any:
    engine_dialect = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    return engine_dialect.identifier_preparer



def insert_ignore_many(session: Session, table: Table, rows: list[dict[str, Any]],
                       returning: str = "key") -> list[Any]:
    """``insert_ignore`` for many rows (all with the same columns) in a few statements; the
    ``returning`` column of the rows that were new. A sweep queueing thousands of pushes paid
    a round trip each (bench/growth.py).

    PostgreSQL: the rows go as one JSON parameter (``json_to_recordset``), a few thousand a
    statement; SQLAlchemy's multi-row VALUES would have psycopg rewrite 12,000 placeholders
    per thousand rows in Python (~30 ms). SQLite: multi-row VALUES ("insertmanyvalues")."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    columns = tuple(rows[0])
    conn = session.connection()
    if len(rows) == 1:  # a sweep's lone push: the cached one-row statement
        return list(conn.execute(_insert_ignore_one(table, dialect, columns, returning),
                                 rows[0]).scalars())
    if dialect != "postgresql":
        stmt = sqlite.insert(table).on_conflict_do_nothing().returning(table.c[returning])
        return list(conn.execute(stmt, rows).scalars())
    stmt = _insert_json_rows(table, columns, returning)
    found: list[Any] = []
    for i in range(0, len(rows), JSON_ROWS):
        chunk = [[row[c] for c in columns] for row in rows[i:i + JSON_ROWS]]
        found += conn.execute(stmt, {"rows": json.dumps(chunk, default=_json_default)}).scalars()
    return found


JSON_ROWS = 5000


@functools.cache
def _insert_ignore_one(table: Table, dialect: str, columns: tuple[str, ...],
                       returning: str) -> TextClause:
    return upsert_statement(table, dialect, columns, returning=returning)


@functools.cache
def _insert_json_rows(table: Table, columns: tuple[str, ...], returning: str) -> TextClause:
    """``INSERT … SELECT`` from a JSON array of row arrays (columns in ``columns`` order)."""
    quote = _preparer("postgresql").quote
    pg = postgresql.dialect()
    names = ", ".join(quote(c) for c in columns)
    picks = ", ".join(f"(r {'->' if isinstance(table.c[c].type, JSON) else '->>'} {i})"
                      f"::{table.c[c].type.compile(dialect=pg)}" for i, c in enumerate(columns))
    return text(f"INSERT INTO {quote(table.name)} ({names}) SELECT {picks} "
                f"FROM json_array_elements(CAST(:rows AS json)) AS r "
                f"ON CONFLICT DO NOTHING RETURNING {quote(returning)}")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
