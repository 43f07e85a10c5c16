"""The outbox: every push is a row before it is a request to WeCom.

Enqueue in the same transaction as the change that causes it, with an idempotency key (a second
enqueue with the same key is a no-op). Dispatchers claim due rows under a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, serialised by an advisory lock so per-recipient
budgets hold across instances), send, and mark the result under that lease.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Index, delete, func, or_, text, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import as_utc, insert_ignore, insert_ignore_many, utc_field

PENDING, SENT, FAILED = "pending", "sent", "failed"
# a push that went out as one line of a grouped message (reminders.pusher.Grouping): its row
# keeps its key, so it is not queued again, and is never sent on its own
MERGED = "merged"
# per recipient: (window, cap). WeCom drops app messages over these silently (doc 90312).
LIMITS = {"app": ((timedelta(minutes=1), 30), (timedelta(hours=1), 1000)),
          "webhook": ((timedelta(minutes=1), 20),),
          # per chat; [secondary] 30/min, 1000/h for replies and pushes together: leave room
          "aibot": ((timedelta(minutes=1), 20), (timedelta(hours=1), 800))}
CLAIM_LOCK = 0x5AFEB07  # advisory lock id: one claimer at a time across instances
# Our windows are a second longer than WeCom's: its clock is not ours, and a message sent
# exactly as the oldest one leaves the window may still count against it there.
SAFETY_MARGIN = timedelta(seconds=1)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_recipient_dispatched", "channel", "recipient",
                            "dispatched_at"))
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    channel: str = Field(default="app", max_length=16)      # app | webhook
    recipient: str = Field(max_length=64)                   # userid, or the webhook's name
    msgtype: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    urgent: bool = Field(default=False)
    status: str = Field(default=PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = utc_field()
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = utc_field(default=None)
    dispatched_at: datetime | None = utc_field(default=None)
    last_error: str = Field(default="", max_length=500)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(default=None)


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    channel: str
    recipient: str
    msgtype: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


def row(*, key: str, recipient: str, msgtype: str, payload: dict[str, Any], now: datetime,
        channel: str = "app", urgent: bool = False, not_before: datetime | None = None,
        status: str = PENDING) -> dict[str, Any]:
    """The values of a new outbox row (``enqueue``, ``enqueue_many``)."""
    return {"key": key, "channel": channel, "recipient": recipient, "msgtype": msgtype,
            "payload": payload, "urgent": urgent, "status": status, "attempts": 0,
            "next_attempt_at": not_before or now, "last_error": "", "result": {},
            "created_at": now}


def enqueue(*, session: Session, key: str, recipient: str, msgtype: str,
            payload: dict[str, Any], now: datetime, channel: str = "app", urgent: bool = False,
            not_before: datetime | None = None) -> bool:
    """Add a push unless one with ``key`` exists; True if it was added."""
    return add(session=session, values=row(
        key=key, recipient=recipient, msgtype=msgtype, payload=payload, now=now,
        channel=channel, urgent=urgent, not_before=not_before))


def add(*, session: Session, values: dict[str, Any]) -> bool:
    """``enqueue`` of a ``row``."""
    return insert_ignore(session, OutboxMessage.__table__, values)


def enqueue_many(*, session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """``enqueue`` for many ``row``s in a few statements; the keys that were new."""
    return set(insert_ignore_many(session, OutboxMessage.__table__, rows))


def claim(*, session: Session, owner: str, now: datetime, limit: int,
          lease: timedelta = timedelta(seconds=60)) -> list[Claimed]:
    """Lease up to ``limit`` due rows whose recipients still have budget in every window.

    Rows over budget are moved to the moment their recipient's window frees up, so the
    dispatcher never spins on them.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
    due = (select(OutboxMessage)
           .where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now,
                  or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now))
           .order_by(OutboxMessage.urgent.desc(), OutboxMessage.next_attempt_at,
                     OutboxMessage.id)
           .limit(limit))
    if postgres:
        due = due.with_for_update(skip_locked=True)
    rows = session.exec(due).all()
    budgets = _budgets(session, rows, now)
    claimed: list[Claimed] = []
    for row in rows:
        target = (row.channel, row.recipient)
        left, frees_at = budgets[target]
        if left <= 0:
            row.next_attempt_at = frees_at
            continue
        budgets[target] = (left - 1, frees_at)
        row.lease_owner, row.lease_until = owner, now + lease
        row.dispatched_at, row.attempts = now, row.attempts + 1
        claimed.append(Claimed(row.id, row.key, row.channel, row.recipient, row.msgtype,
                               dict(row.payload), row.attempts, as_utc(row.created_at)))
    session.flush()
    return claimed


def _cap(channel: str) -> int:
    return min((cap for _, cap in LIMITS.get(channel, ())), default=10**9)


def _budgets(session: Session, rows: list[OutboxMessage],
             now: datetime) -> dict[tuple[str, str], tuple[int, datetime]]:
    """(channel, recipient) -> (sends left now, when the tightest full window frees)."""
    budgets = {(r.channel, r.recipient): (_cap(r.channel), now) for r in rows}
    for channel in {r.channel for r in rows}:
        recipients = {r.recipient for r in rows if r.channel == channel}
        for wecom_window, cap in LIMITS.get(channel, ()):
            window = wecom_window + SAFETY_MARGIN
            counts = session.exec(
                select(OutboxMessage.recipient, func.count(), func.min(OutboxMessage.dispatched_at))
                .where(OutboxMessage.channel == channel,
                       OutboxMessage.recipient.in_(recipients),
                       OutboxMessage.dispatched_at > now - window)
                .group_by(OutboxMessage.recipient)).all()
            for recipient, count, oldest in counts:
                left = cap - count
                frees = as_utc(oldest) + window if left <= 0 else now
                prev_left, prev_frees = budgets[(channel, recipient)]
                budgets[(channel, recipient)] = (min(prev_left, left), max(prev_frees, frees))
    return budgets


def _under_lease(row_id: int, owner: str):
    return (update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.lease_owner == owner,
                   OutboxMessage.status == PENDING))


def mark_sent(*, session: Session, row_id: int, owner: str, now: datetime,
              result: dict[str, Any]) -> bool:
    done = session.execute(_under_lease(row_id, owner).values(
        status=SENT, sent_at=now, result=result, lease_owner=None, lease_until=None,
        last_error=""))
    return done.rowcount == 1


def mark_retry(*, session: Session, row_id: int, owner: str, now: datetime, error: str,
               delay: timedelta) -> None:
    session.execute(_under_lease(row_id, owner).values(
        next_attempt_at=now + delay, lease_owner=None, lease_until=None,
        last_error=error[:500]))


def mark_failed(*, session: Session, row_id: int, owner: str, now: datetime, error: str,
                result: dict[str, Any] | None = None) -> None:
    session.execute(_under_lease(row_id, owner).values(
        status=FAILED, lease_owner=None, lease_until=None, last_error=error[:500],
        result=result or {}))


def next_due(*, session: Session) -> datetime | None:
    return as_utc(session.exec(select(func.min(OutboxMessage.next_attempt_at))
                               .where(OutboxMessage.status == PENDING)).one())


def listing(*, session: Session, statuses: tuple[str, ...] = (PENDING, FAILED),
            limit: int = 200) -> list[OutboxMessage]:
    return list(session.exec(select(OutboxMessage).where(OutboxMessage.status.in_(statuses))
                             .order_by(OutboxMessage.id).limit(limit)).all())


def requeue(*, session: Session, row_id: int, now: datetime) -> bool:
    """An admin's retry of a failed push: pending again, due now."""
    done = session.execute(update(OutboxMessage)
                           .where(OutboxMessage.id == row_id, OutboxMessage.status == FAILED)
                           .values(status=PENDING, next_attempt_at=now, last_error=""))
    return done.rowcount == 1


def prune(*, session: Session, before: datetime, keep_prefixes: tuple[str, ...] = (),
          limit: int = 5000) -> int:
    """Delete up to ``limit`` delivered rows sent before ``before``, except those whose key
    starts with one of ``keep_prefixes`` (keys that must outlive the push: a sweep asks for
    them again as long as what they are about lasts). Pending and failed rows stay: the
    ``safebot outbox`` CLI lists and retries them, the nightly duty check reads failures.
    How many rows went."""
    # sent implies due before it was sent: next_attempt_at bounds the scan in ix_outbox_due
    old = (select(OutboxMessage.id)
           .where(OutboxMessage.status == SENT, OutboxMessage.next_attempt_at < before,
                  OutboxMessage.sent_at < before,
                  *(OutboxMessage.key.not_like(f"{p}%") for p in keep_prefixes))
           .limit(limit))
    doomed = delete(OutboxMessage).where(OutboxMessage.id.in_(old.scalar_subquery()))
    return session.execute(doomed.execution_options(synchronize_session=False)).rowcount
