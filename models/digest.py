"""Routine reminders wait here to be gathered into one daily digest per person, and snoozes
(`稍后 YH… 3天`) hold back one subject for a while."""
from __future__ import annotations

from datetime import date, datetime, timezone

from typing import Any

from sqlalchemy import Index, delete, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import in_ids, insert_ignore, insert_ignore_many, read_cache, utc_field


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


def item_row(*, key: str, userid: str, subject: str, text: str,
             now: datetime) -> dict[str, Any]:
    return {"key": key, "userid": userid, "subject": subject, "text": text, "created_at": now}


def add_item(*, session: Session, key: str, userid: str, subject: str, text: str,
             now: datetime) -> bool:
    return insert_ignore(session, DigestItem.__table__, item_row(
        key=key, userid=userid, subject=subject, text=text, now=now))


def add_items(*, session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """``add_item`` for many ``item_row``s in a few statements; the keys that were new."""
    return set(insert_ignore_many(session, DigestItem.__table__, rows))


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


def pending(*, session: Session) -> dict[str, list[Any]]:
    """Unsent items by person, oldest first: rows of ``id``, ``userid`` and ``text`` (not
    ORM objects: the morning after a first deployment there are tens of thousands)."""
    t = DigestItem.__table__.c
    rows = session.execute(select(t.id, t.userid, t.text).where(t.sent_at.is_(None))
                           .order_by(t.userid, t.created_at, t.id)).all()
    out: dict[str, list[Any]] = {}
    for row in rows:
        out.setdefault(row.userid, []).append(row)
    return out


def mark_sent(*, session: Session, ids: list[int], now: datetime) -> None:
    # Core, the ids written into the SQL: the ORM's default ("evaluate") tests every item in
    # the session, once per person (quadratic when the morning digest goes to thousands of
    # people), "fetch" reads every id back, and a thousand bound parameters make PostgreSQL
    # plan a generic statement (bench/growth.py). Items already loaded keep their old
    # ``sent_at``: the digest sweep, the one caller, is done with them.
    table = DigestItem.__table__
    session.execute(update(table).where(in_ids(table.c.id, ids)).values(sent_at=now))


def prune(*, session: Session, before: datetime, limit: int = 5000) -> int:
    """Delete up to ``limit`` items created before ``before`` and gone out (in a digest, or
    dropped by a snooze); their keys are about one day, period or deadline long past.
    How many went."""
    t = DigestItem.__table__.c
    old = (select(t.id).where(t.sent_at < before, t.created_at < before)  # ix_digest_item_pending
           .limit(limit))
    return session.execute(delete(DigestItem.__table__)
                           .where(t.id.in_(old.scalar_subquery()))).rowcount
