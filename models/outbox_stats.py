"""The outbox's backlog in one small query, for ``/healthz`` and ``/metrics``.

``ix_outbox_due`` (status, next_attempt_at) covers it: sent rows, however many, are not read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, select

from models.base import as_utc
from models.outbox import FAILED, PENDING, OutboxMessage


@dataclass(frozen=True)
class Backlog:
    pending: int = 0
    failed: int = 0
    oldest_due: datetime | None = None  # the pending row that has been due the longest

    def oldest_due_age_s(self, now: datetime) -> float | None:
        """How long the oldest due row has waited (rows due later, quiet hours or backoff,
        do not count: they are not late)."""
        return None if self.oldest_due is None else max((now - self.oldest_due).total_seconds(), 0)


def backlog(*, session: Session, now: datetime) -> Backlog:
    due = case((OutboxMessage.next_attempt_at <= now, OutboxMessage.next_attempt_at))
    rows = session.exec(select(OutboxMessage.status, func.count(), func.min(due))
                        .where(OutboxMessage.status.in_((PENDING, FAILED)))
                        .group_by(OutboxMessage.status)).all()
    by_status = {status: (count, oldest) for status, count, oldest in rows}
    pending, oldest = by_status.get(PENDING, (0, None))
    return Backlog(pending=pending, failed=by_status.get(FAILED, (0, None))[0],
                   oldest_due=as_utc(oldest))
