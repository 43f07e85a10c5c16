"""Callback ids already handled: WeCom delivers a callback up to three times.

A row is written when a message's turn begins (``models.turn_begin``), so concurrent copies are
handled once. A turn that changes something also marks its row ``done`` when it ends. WeCom
retries a callback it got no answer to after 5 s: a copy that finds its row not done, older than
``TAKEOVER_AFTER`` but younger than ``RETRIES_WITHIN``, while its caller holds the
conversation's lock (so no live turn has it), belongs to a turn that died with its process
(kill -9, a crash) and is handled again instead of being lost (``take_over``). A turn that only
read (帮助, a query) is not marked: answering it twice harms nobody, and it saves a write per
message.
"""
from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import bindparam, true, update
from sqlmodel import Field, Session, SQLModel

from models.base import insert_ignore, utc_field


TAKEOVER_AFTER = timedelta(seconds=1)  # a copy sooner than this is a duplicate, never a retry
RETRIES_WITHIN = timedelta(seconds=60)  # WeCom's three retries come within ~20 s; later: a replay


class ProcessedCallback(SQLModel, table=True):
    __tablename__ = "processed_callback"
    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = utc_field(index=True)
    # False while the turn that handles it may still be running (rows from before: handled)
    done: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


def first_time(*, session: Session, key: str, now: datetime) -> bool:
    """Record ``key`` as handled; True only for the first delivery, however many arrive at
    once. (The dispatcher records its messages with ``models.turn_begin``, not done until
    their turn says so.)"""
    return insert_ignore(session, ProcessedCallback.__table__,
                         {"key": key, "received_at": now, "done": True})


def take_over(*, session: Session, key: str, now: datetime) -> bool:
    """A copy of a message whose row is not done, 1–60 s old: True if it is taken over. The
    caller holds the conversation's lock, so no live turn of this message can be running: the
    turn that wrote the row died with its process (or read only: answering again harms
    nobody). One conditional UPDATE, so of two copies only one takes it."""
    found = session.connection().execute(_take_over(), {
        "k": key, "now": now, "stale": now - TAKEOVER_AFTER,
        "oldest": now - RETRIES_WITHIN}).first()
    return found is not None


def mark_done(*, session: Session, key: str) -> None:
    session.connection().execute(_mark_done(), {"k": key})


@functools.cache
def _take_over():
    table = ProcessedCallback.__table__
    at_type = table.c.received_at.type
    return (update(table).where(table.c.key == bindparam("k"), table.c.done.is_(False),
                                table.c.received_at < bindparam("stale", type_=at_type),
                                table.c.received_at > bindparam("oldest", type_=at_type))
            .values(received_at=bindparam("now", type_=table.c.received_at.type))
            .returning(table.c.key))


@functools.cache
def _mark_done():
    table = ProcessedCallback.__table__
    return update(table).where(table.c.key == bindparam("k")).values(done=True)
