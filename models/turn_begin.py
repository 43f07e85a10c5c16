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
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

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


def begin_many(*, conn: Any, dialect: str, begins: list[Begin]) -> list[Began]:
    """What each message's turn starts from: at most four statements for the whole batch,
    however many messages it holds. ``conn``: the driver's connection, in a transaction
    (``Database.run_driver``); ``dialect``: ``sqlite`` or ``postgresql``."""
    sql = _Dialect.named(dialect)
    cursor = conn.cursor()
    try:
        seen = _record(cursor, sql, begins)
        live = [b for b, s in zip(begins, seen) if s is not Seen.DUPLICATE]
        identities = _identities(cursor, sql, {b.userid for b in live})
        found = _conversations(cursor, sql, {b.key for b in live if b.conversation})
    finally:
        cursor.close()
    return [Began(s) if s is Seen.DUPLICATE else
            Began(s, identities.get(b.userid),
                  _snapshot(found.get(b.key), sql, b.now) if b.conversation else None)
            for b, s in zip(begins, seen)]


def _record(cursor: Any, dialect: "_Dialect", begins: list[Begin]) -> list[Seen]:
    """Each message's dedupe row: new, or what the row found says (models.dedupe's rules). A
    key twice in one batch (concurrent copies) is new once."""
    first: dict[str, Begin] = {}
    for b in begins:
        if b.dedupe_key is not None:
            first.setdefault(b.dedupe_key, b)
    inserted: set[str] = set()
    if first:
        rows = [(k, dialect.time(b.now)) for k, b in first.items()]
        values = ", ".join(["(?, ?, FALSE)"] * len(rows))
        inserted = {r[0] for r in dialect.run(
            cursor, f"INSERT INTO processed_callback (key, received_at, done) VALUES {values} "
                    "ON CONFLICT DO NOTHING RETURNING key", [v for row in rows for v in row])}
    older = [k for k in first if k not in inserted]
    found = {r[0]: (r[1], r[2]) for r in dialect.run(
        cursor, "SELECT key, done, received_at FROM processed_callback WHERE key IN "
                f"({', '.join(['?'] * len(older))})", older)} if older else {}
    seen: list[Seen] = []
    for b in begins:
        key = b.dedupe_key
        if key is None:
            seen.append(Seen.NEW)
        elif key in inserted:
            seen.append(Seen.NEW if first[key] is b else Seen.DUPLICATE)
        elif key in found and first[key] is b:
            done, received_at = found[key]
            age = b.now - dialect.read_time(received_at)
            unfinished = not done and TAKEOVER_AFTER < age < RETRIES_WITHIN
            seen.append(Seen.UNFINISHED if unfinished else Seen.DUPLICATE)
        else:  # a copy in the same batch, or a row pruned meanwhile
            seen.append(Seen.DUPLICATE)
    return seen


def _identities(cursor: Any, dialect: "_Dialect", userids: set[str]) -> dict[str, Identity]:
    if not userids:
        return {}
    rows = dialect.run(cursor, (
        "SELECT person.userid, person.id, person.name, unit.id, unit.name, unit.kind, "
        "person_role.role FROM person JOIN unit ON unit.id = person.unit_id "
        "LEFT OUTER JOIN person_role ON person_role.person_id = person.id "
        f"WHERE person.userid IN ({', '.join(['?'] * len(userids))})"), list(userids))
    people: dict[str, tuple] = {}
    roles: dict[str, set[str]] = {}
    for userid, *person, role in rows:
        people[userid] = tuple(person)
        if role is not None:
            roles.setdefault(userid, set()).add(role)
    return {userid: Identity(person_id=p[0], userid=userid, name=p[1], unit_id=p[2],
                             unit_name=p[3], unit_kind=p[4],
                             roles=frozenset(roles.get(userid, ())))
            for userid, p in people.items()}


def _conversations(cursor: Any, dialect: "_Dialect", keys: set[str]) -> dict[str, tuple]:
    if not keys:
        return {}
    rows = dialect.run(cursor, "SELECT key, state, data, pages, updated_at FROM conversation "
                               f"WHERE key IN ({', '.join(['?'] * len(keys))})", list(keys))
    return {row[0]: row[1:] for row in rows}


def _snapshot(row: tuple | None, dialect: "_Dialect", now: datetime) -> Snapshot:
    """A conversation as ``conversation.load`` reads it: nothing once idle for too long. Each
    turn gets its own copy (a handler changes it in place)."""
    if row is None:
        return Snapshot()
    state, data, pages, updated_at = row
    if dialect.read_time(updated_at) + IDLE_TIMEOUT < now:
        return Snapshot()
    return Snapshot(state=state, data=dict(dialect.read_json(data)),
                    pages=list(dialect.read_json(pages)))


class _Dialect:
    """What differs between the two drivers: placeholders, times, JSON."""

    _known: dict[str, "_Dialect"] = {}

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    @classmethod
    def named(cls, name: str) -> "_Dialect":
        if name not in cls._known:
            cls._known[name] = cls(name)
        return cls._known[name]

    def run(self, cursor: Any, sql: str, params: list[Any]) -> list[tuple]:
        if not self.sqlite:  # psycopg's placeholders are %s
            sql = sql.replace("?", "%s")
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
