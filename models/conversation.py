"""Conversation state: one row per person and chat, so a restart mid-conversation loses nothing.

The row holds the multi-step state (name + data) and the unread pages of a long reply. It has an
idle timeout: a state older than that is treated as gone.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Select, bindparam, select
from sqlmodel import Field, Session, SQLModel

from models.base import as_utc, upsert_statement, utc_field

IDLE_TIMEOUT = timedelta(minutes=30)


class Conversation(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=200)  # "userid" or "userid@chatid"
    state: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    pages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = utc_field()


@dataclass
class Snapshot:
    """What the dispatcher reads at the start of a turn and writes back at its end."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)


@functools.cache
def _load_query() -> Select:
    table = Conversation.__table__
    return (select(table.c.state, table.c.data, table.c.pages, table.c.updated_at)
            .where(table.c.key == bindparam("key")))


def load(*, session: Session, key: str, now: datetime) -> Snapshot:
    """A Core read with a statement built once (this runs for every message)."""
    row = session.connection().execute(_load_query(), {"key": key}).first()
    if row is None or as_utc(row.updated_at) + IDLE_TIMEOUT < now:
        return Snapshot()
    return Snapshot(state=row.state, data=dict(row.data), pages=list(row.pages))


def save(*, session: Session, key: str, snapshot: Snapshot, now: datetime) -> None:
    """Write the turn's state back: one upsert (or a delete when nothing is left)."""
    table = Conversation.__table__
    conn = session.connection()
    if snapshot.state is None and not snapshot.pages:
        conn.execute(table.delete().where(table.c.key == key))
        return
    conn.execute(_upsert(conn.dialect.name), {
        "key": key, "state": snapshot.state, "data": dict(snapshot.data),
        "pages": list(snapshot.pages), "updated_at": now})


@functools.cache
def _upsert(dialect: str) -> Any:
    table = Conversation.__table__
    return upsert_statement(table, dialect, tuple(c.name for c in table.c), conflict=("key",),
                            update=("state", "data", "pages", "updated_at"))
