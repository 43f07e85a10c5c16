"""The AI bot's stream replies in callback mode, kept in the database.

WeCom polls a stream (``msgtype: stream`` callbacks) until it is finished, for at most six
minutes, and the polls may reach any instance, or this one after a restart: so the answer lives
here, not in memory. A retried message (same msgid) finds its stream again.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Text, delete, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, utc_field


class AibotStream(SQLModel, table=True):
    __tablename__ = "aibot_stream"
    id: str = Field(primary_key=True, max_length=64)         # the stream id WeCom polls
    msgid: str = Field(max_length=128, unique=True)
    user_id: str = Field(default="", max_length=64)
    chat_id: str = Field(default="", max_length=64)
    content: str = Field(default="", sa_type=Text)
    finished: bool = Field(default=False)
    response_url: str = Field(default="", max_length=1000)
    late_sent: bool = Field(default=False)                    # response_url used (once only)
    created_at: datetime = utc_field(index=True)
    updated_at: datetime = utc_field()


def open_stream(*, session: Session, stream_id: str, msgid: str, user_id: str, chat_id: str,
                content: str, finished: bool, response_url: str, now: datetime) -> AibotStream:
    """Record a new stream, or return the one this msgid already has (a retried callback)."""
    insert_ignore(session, AibotStream.__table__, {
        "id": stream_id, "msgid": msgid, "user_id": user_id, "chat_id": chat_id,
        "content": content, "finished": finished, "response_url": response_url,
        "late_sent": False, "created_at": now, "updated_at": now})
    return session.exec(select(AibotStream).where(AibotStream.msgid == msgid)).one()


def by_msgid(*, session: Session, msgid: str) -> AibotStream | None:
    return session.exec(select(AibotStream).where(AibotStream.msgid == msgid)).first()


def get(*, session: Session, stream_id: str) -> AibotStream | None:
    return session.get(AibotStream, stream_id)


def finish(*, session: Session, stream_id: str, content: str, now: datetime) -> None:
    session.execute(update(AibotStream).where(AibotStream.id == stream_id).values(
        content=content, finished=True, updated_at=now))


def claim_late(*, session: Session, stream_id: str) -> str | None:
    """The stream's response_url, once: a second caller gets None (it may be used once)."""
    done = session.execute(update(AibotStream).where(
        AibotStream.id == stream_id, AibotStream.late_sent.is_(False),
        AibotStream.response_url != "").values(late_sent=True))
    if done.rowcount != 1:
        return None
    return session.get(AibotStream, stream_id).response_url


def prune(*, session: Session, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Forget streams nobody can poll any more (WeCom stops after six minutes)."""
    return session.execute(delete(AibotStream).where(AibotStream.created_at < now - keep)).rowcount
