"""The monthly updates (``models.monthly``) as leaders see them: who has submitted, who is late.

Every unit below the bureau owes an update every month (``models.monthly_report``'s
``REPORTING_KINDS``; seed 004 四(五): 各学校 … 做为月报).
Month M's update falls due on the due day of month M+1 (``models.monthly.window``), so the
update a leader asks about "this month" (``月报情况``) is last month's, the one due now.

A unit's update of a month is

- ``on_time``: submitted, not late;
- ``late``: submitted after the due day (迟交);
- ``missing``: not submitted and the due day has passed (逾期未交);
- ``pending``: not submitted yet, the due day still to come (``draft`` says if it is started).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

from sqlalchemy import select
from sqlmodel import Session

from bot.dates import add_months
from models import monthly as mu
from models.base import as_utc
from models.monthly_report import REPORTING_KINDS
from models.org import Unit

STATES = ("on_time", "late", "missing", "pending")


@dataclass(frozen=True)
class Calendar:
    """When updates fall due: ``[monthly] due_day`` and ``late_days`` of the configuration."""

    due_day: int
    late_days: int

    def window(self, month: str) -> mu.Window:
        return mu.window(month, due_day=self.due_day, late_days=self.late_days)


def owing_units(*, session: Session, unit_ids: Iterable[int]) -> list[tuple[int, str]]:
    """The units among ``unit_ids`` that owe updates, as (id, name), in the order given."""
    ids = list(unit_ids)
    rows = dict(session.execute(select(Unit.id, Unit.name)
                                .where(Unit.id.in_(ids), Unit.kind.in_(REPORTING_KINDS))).all())
    return [(uid, rows[uid]) for uid in ids if uid in rows]


def state_of(row: mu.MonthlyUpdate | None, win: mu.Window, today: date) -> str:
    if row is not None and row.status == mu.UpdateStatus.SUBMITTED:
        return "late" if row.late else "on_time"
    return "missing" if today > win.due else "pending"


def month_status(*, session: Session, unit_ids: Iterable[int], today: date, cal: Calendar,
                 month: str | None = None) -> dict[str, Any]:
    """Every owing unit's update of ``month`` (default: last month's, due this month)."""
    month = month or mu.previous_month(today)
    win = cal.window(month)
    units = owing_units(session=session, unit_ids=unit_ids)
    rows = mu.updates_of(session=session, month=month, unit_ids=[uid for uid, _ in units])
    out = []
    for uid, name in units:
        row = rows.get(uid)
        out.append({"unit_id": uid, "unit": name, "state": state_of(row, win, today),
                    "draft": row is not None and row.status == mu.UpdateStatus.DRAFT,
                    "submitted_at": as_utc(row.submitted_at) if row is not None else None})
    counts = Counter(r["state"] for r in out)
    return {"month": month, "due": win.due, "lock": win.lock, "phase": win.phase(today),
            "rows": out, "counts": {s: counts[s] for s in STATES}, "units": len(out)}


def months_due_between(start: date, end: date, cal: Calendar) -> list[str]:
    """The months whose update fell due from ``start`` to ``end`` (both included)."""
    months, first = [], add_months(start.replace(day=1), -2)
    while first <= end:
        month = mu.month_key(first)
        if start <= cal.window(month).due <= end:
            months.append(month)
        first = add_months(first, 1)
    return months


def monthly_on_time(*, session: Session, unit_ids: list[int], start: date, end: date,
                    today: date, cal: Calendar) -> tuple[Counter[int], Counter[int]]:
    """For grading: per unit, the updates that fell due from ``start`` to ``end`` (and before
    today) and how many of them were submitted on time. A month in which no unit at all has
    an update is left out: safebot was not yet used for monthly updates then."""
    months = [m for m in months_due_between(start, end, cal) if cal.window(m).due < today]
    used = set(session.execute(select(mu.MonthlyUpdate.month)
                               .where(mu.MonthlyUpdate.month.in_(months))
                               .distinct()).scalars()) if months else set()
    owed: Counter[int] = Counter()
    on_time: Counter[int] = Counter()
    for month in sorted(used):
        win = cal.window(month)
        rows = mu.updates_of(session=session, month=month, unit_ids=unit_ids)
        for uid in unit_ids:
            owed[uid] += 1
            on_time[uid] += state_of(rows.get(uid), win, today) == "on_time"
    return owed, on_time
