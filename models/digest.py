"""Routine reminders wait here to be gathered into one daily digest per person, and snoozes
(`稍后 YH… 3天`) hold back one subject for a while."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import Index, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, read_cache, utc_field


DROPPED = datetime(1970, 1, 1, tzinfo=timezone.utc)  # "sent_at" of an item snoozed away


class DigestItem(SQLModel, table=True):
    __tablename__ = "digest_item"
    __table_args__ = (Index("ix_digest_item_pending", "sent_at", "userid"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    userid: str = Field(max_length=64)
    subject: str = Field(default="", max_length=64)  # e.g. a hazard number, for snoozing
    text: str = Field(max_length=2000)
    created_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(default=None)


class Snooze(SQLModel, table=True):
    userid: str = Field(primary_key=True, max_length=64)
    subject: str = Field(primary_key=True, max_length=64)
    until: date


def add_item(*, session: Session, key: str, userid: str, subject: str, text: str,
             now: datetime) -> bool:
    return insert_ignore(session, DigestItem.__table__, {
        "key": key, "userid": userid, "subject": subject, "text": text, "created_at": now})


def snoozed(*, session: Session, userid: str, subject: str, today: date) -> bool:
    cache = read_cache(session)
    if cache is not None:
        if "snoozes" not in cache:  # the whole (small) table, once
            cache["snoozes"] = {(r.userid, r.subject): r.until
                                for r in session.exec(select(Snooze)).all()}
        until = cache["snoozes"].get((userid, subject))
        return until is not None and until > today
    row = session.get(Snooze, (userid, subject))
    return row is not None and row.until > today


def snooze(*, session: Session, userid: str, subject: str, until: date) -> None:
    row = session.get(Snooze, (userid, subject))
    if row is None:
        session.add(Snooze(userid=userid, subject=subject, until=until))
    else:
        row.until = until
    session.execute(update(DigestItem).where(DigestItem.userid == userid,
                                             DigestItem.subject == subject,
                                             DigestItem.sent_at.is_(None))
                    .values(sent_at=DROPPED))


def pending(*, session: Session) -> dict[str, list[DigestItem]]:
    """Unsent items by person, oldest first."""
    rows = session.exec(select(DigestItem).where(DigestItem.sent_at.is_(None))
                        .order_by(DigestItem.userid, DigestItem.created_at, DigestItem.id)).all()
    out: dict[str, list[DigestItem]] = {}
    for row in rows:
        out.setdefault(row.userid, []).append(row)
    return out


def mark_sent(*, session: Session, ids: list[int], now: datetime) -> None:
    # "fetch": the rows' ids come back and only those items in the session are updated; the
    # default ("evaluate") tests every item in the session, once per person: quadratic when
    # the morning digest goes to thousands of people (bench/growth.py)
    session.execute(update(DigestItem).where(DigestItem.id.in_(ids)).values(sent_at=now)
                    .execution_options(synchronize_session="fetch"))
