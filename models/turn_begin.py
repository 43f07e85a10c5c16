"""The database step every message takes, for many messages in one transaction.

For each message: record its dedupe key, load its sender and, if asked, its conversation: what
``models.dedupe``, ``models.org.get_identity`` and ``models.conversation.load`` do, in the same
SQL, sent through the driver's own cursor. SQLAlchemy's execution machinery costs ~35 µs per
statement and its session ~45 µs per transaction: more than SQLite needs to run all three
(bench/profile_callback.py). The SQL is the same on SQLite and PostgreSQL; only the
placeholders and the way values come back differ.

This runs before the turn holds its conversation's lock, so a copy of a message that may be a
retry of a turn that died is only reported (``UNFINISHED``); ``models.dedupe.take_over``
decides it under the lock.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlmodel import Session

from models.conversation import IDLE_TIMEOUT, Snapshot
from models.dedupe import RETRIES_WITHIN, TAKEOVER_AFTER
from models.org import Identity


class Seen(Enum):
    NEW = "new"                # first delivery (or no dedupe key): handle it
    DUPLICATE = "duplicate"    # a copy of a message handled or being handled: answer nothing
    UNFINISHED = "unfinished"  # a copy whose turn never marked it done: see dedupe.take_over


@dataclass(frozen=True)
class Begin:
    """One message's turn to begin: who, which conversation, when, and its dedupe key."""

    userid: str
    key: str
    now: datetime
    dedupe_key: str | None = None
    conversation: bool = True  # False: the turn loads it itself, under its lock


@dataclass(frozen=True)
class Began:
    seen: Seen
    identity: Identity | None = None
    snapshot: Snapshot | None = None  # None when not asked for (or a duplicate)


_INSERT = ("INSERT INTO processed_callback (key, received_at, done) "
           "VALUES (:k, :now, FALSE) ON CONFLICT DO NOTHING RETURNING key")
_FOUND = "SELECT done, received_at FROM processed_callback WHERE key = :k"
_IDENTITY = ("SELECT person.id, person.name, unit.id, unit.name, unit.kind, person_role.role "
             "FROM person JOIN unit ON unit.id = person.unit_id "
             "LEFT OUTER JOIN person_role ON person_role.person_id = person.id "
             "WHERE person.userid = :userid")
_CONVERSATION = "SELECT state, data, pages, updated_at FROM conversation WHERE key = :key"


def begin_many(*, session: Session, begins: list[Begin]) -> list[Began]:
    """What each message's turn starts from; one transaction for all of them."""
    dialect = _Dialect.of(session)
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        return [_begin_one(cursor, dialect, b) for b in begins]
    finally:
        cursor.close()


def _begin_one(cursor: Any, dialect: "_Dialect", begin: Begin) -> Began:
    run = dialect.run
    if begin.dedupe_key is not None:
        seen = _record(cursor, dialect, begin.dedupe_key, begin.now)
        if seen is Seen.DUPLICATE:
            return Began(seen)
    else:
        seen = Seen.NEW
    rows = run(cursor, _IDENTITY, {"userid": begin.userid})
    identity = None
    if rows:
        person_id, name, unit_id, unit_name, unit_kind, _ = rows[0]
        identity = Identity(person_id=person_id, userid=begin.userid, name=name,
                            unit_id=unit_id, unit_name=unit_name, unit_kind=unit_kind,
                            roles=frozenset(r[5] for r in rows if r[5] is not None))
    snapshot = None
    if begin.conversation:
        found = run(cursor, _CONVERSATION, {"key": begin.key})
        snapshot = Snapshot()
        if found:
            state, data, pages, updated_at = found[0]
            if dialect.read_time(updated_at) + IDLE_TIMEOUT >= begin.now:
                snapshot = Snapshot(state=state, data=dict(dialect.read_json(data)),
                                    pages=list(dialect.read_json(pages)))
    return Began(seen, identity, snapshot)


def _record(cursor: Any, dialect: "_Dialect", key: str, now: datetime) -> Seen:
    """The dedupe row: new, or what the row found says (the rules of models.dedupe)."""
    if dialect.run(cursor, _INSERT, {"k": key, "now": dialect.time(now)}):
        return Seen.NEW
    found = dialect.run(cursor, _FOUND, {"k": key})
    if not found:  # pruned between the two statements: nothing to take over
        return Seen.DUPLICATE
    done, received_at = found[0]
    age = now - dialect.read_time(received_at)
    if done or not TAKEOVER_AFTER < age < RETRIES_WITHIN:
        return Seen.DUPLICATE
    return Seen.UNFINISHED


class _Dialect:
    """What differs between the two drivers: placeholders, times, JSON."""

    _known: dict[str, "_Dialect"] = {}

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"
        self._sql: dict[str, str] = {}

    @classmethod
    def of(cls, session: Session) -> "_Dialect":
        name = session.get_bind().dialect.name
        if name not in cls._known:
            cls._known[name] = cls(name)
        return cls._known[name]

    def run(self, cursor: Any, sql: str, params: dict[str, Any]) -> list[tuple]:
        if not self.sqlite:  # psycopg's placeholders are %(name)s
            sql = self._sql.get(sql) or self._sql.setdefault(
                sql, re.sub(r":(\w+)", r"%(\1)s", sql))
        cursor.execute(sql, params)
        return cursor.fetchall()

    def time(self, value: datetime) -> Any:
        """A UTC time as the column holds it (on SQLite SQLAlchemy's format: naive, UTC)."""
        if not self.sqlite:
            return value
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def read_time(value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    @staticmethod
    def read_json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, (str, bytes)) else value
