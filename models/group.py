"""Group chats the AI bot sits in, and the unit each is bound to (``绑定群``).

A row appears the first time a group is told it is unbound (so it is told once, not on every
message) or when it is bound. A report in a bound group belongs to the group's unit, and the
unit's group pushes go to its groups.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, utc_field


class GroupChat(SQLModel, table=True):
    __tablename__ = "group_chat"
    id: int | None = Field(default=None, primary_key=True)
    chatid: str = Field(max_length=64, unique=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    bound_by: int | None = Field(default=None, foreign_key="person.id")
    bound_at: datetime | None = utc_field(default=None)
    told_unbound_at: datetime | None = utc_field(default=None)  # the one "how to bind" note
    first_seen_at: datetime = utc_field()


def _ensure(session: Session, chatid: str, now: datetime) -> None:
    insert_ignore(session, GroupChat.__table__, {"chatid": chatid, "first_seen_at": now})


def get(*, session: Session, chatid: str) -> GroupChat | None:
    return session.exec(select(GroupChat).where(GroupChat.chatid == chatid)).first()


def unit_for_chat(*, session: Session, chatid: str) -> int | None:
    """The unit a group is bound to, or None (unbound, or never seen)."""
    return session.exec(select(GroupChat.unit_id).where(GroupChat.chatid == chatid)).first()


def bind(*, session: Session, chatid: str, unit_id: int, person_id: int,
         now: datetime) -> None:
    _ensure(session, chatid, now)
    session.execute(update(GroupChat).where(GroupChat.chatid == chatid).values(
        unit_id=unit_id, bound_by=person_id, bound_at=now))


def note_unbound(*, session: Session, chatid: str, now: datetime) -> bool:
    """True exactly once per unbound group: the moment to tell it how to bind. Concurrent
    messages of one group are settled by the database (one UPDATE wins)."""
    _ensure(session, chatid, now)
    done = session.execute(update(GroupChat).where(
        GroupChat.chatid == chatid, GroupChat.unit_id.is_(None),
        GroupChat.told_unbound_at.is_(None)).values(told_unbound_at=now))
    return done.rowcount == 1


def chats_of_unit(*, session: Session, unit_id: int) -> list[str]:
    return list(session.exec(select(GroupChat.chatid).where(GroupChat.unit_id == unit_id)
                             .order_by(GroupChat.id)).all())
