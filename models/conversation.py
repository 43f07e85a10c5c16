"""Conversation state: one row per person and chat, so a restart mid-conversation loses nothing.

The row holds the multi-step state (name + data) and the unread pages of a long reply. It has an
idle timeout: a state older than that is treated as gone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel

from models.base import as_utc, utc_field

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


def load(*, session: Session, key: str, now: datetime) -> Snapshot:
    row = session.get(Conversation, key)
    if row is None or as_utc(row.updated_at) + IDLE_TIMEOUT < now:
        return Snapshot()
    return Snapshot(state=row.state, data=dict(row.data), pages=list(row.pages))


def save(*, session: Session, key: str, snapshot: Snapshot, now: datetime) -> None:
    row = session.get(Conversation, key)
    if snapshot.state is None and not snapshot.pages:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = Conversation(key=key, updated_at=now)
        session.add(row)
    row.state, row.data, row.pages, row.updated_at = (
        snapshot.state, dict(snapshot.data), list(snapshot.pages), now)
