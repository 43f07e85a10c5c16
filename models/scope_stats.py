"""What a leader's numbers are made of, for a scope (a unit and every unit below it).

The period figures (found by level, rectified, closed, the rectification rate) are
``models.stats.unit_stats`` added up over the scope, so 统计, the weekly digest, the dashboard
and the monthly update's table agree (统计 has the database add up the hazards' figures,
``models.stats.hazard_totals``: the same counts without a row per unit). Beside them:

- ``breakdown``: the hazards found in the period by status (as they stand now) and by area;
- ``open_by_unit``: what is open *today*, whenever it was reported, and what of it is
  *overdue* — not yet rectified (待制定整改方案 or 整改中) with a 完成时限 before today, the
  rule of the ``逾期`` command;
- ``weekly``: hazards found and closed per ISO week, for the charts.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlmodel import Session

from models.base import as_utc, in_ids
from models.hazard import OPEN, Hazard, Level, Status
from models.ledger import UNFINISHED, local_day_bounds
from models.stats import UnitStats, every_unit, in_units, rate

SUMMED = ("found_general", "found_major", "rectified", "closed", "overdue", "selfchecks",
          "inspections_principal", "inspections_other")
OPEN_KEYS = ("open", "open_major", "overdue", "overdue_major")


def add_up(stats: Iterable[UnitStats]) -> dict[str, Any]:
    """The scope's period figures: each count summed, the rate recomputed from the sums."""
    total = {key: 0 for key in SUMMED}
    for one in stats:
        for key in SUMMED:
            total[key] += getattr(one, key)
    total["found"] = total["found_general"] + total["found_major"]
    total["rate"] = rate(total["rectified"], total["found"])
    return total


def breakdown(*, session: Session, unit_ids: Iterable[int], start: date, end: date,
              tz: ZoneInfo) -> dict[str, Any]:
    """Hazards reported from ``start`` to ``end`` (local dates, both included): how many are
    in each status now, and how many in each area (most first)."""
    ids = list(unit_ids)
    first, after = local_day_bounds(start, end, tz)
    rows = session.execute(
        select(Hazard.status, Hazard.area, func.count())
        .where(_in_scope(session, Hazard.unit_id, ids), Hazard.reported_at >= first,
               Hazard.reported_at < after)
        .group_by(Hazard.status, Hazard.area)).all()
    statuses: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for status, area, n in rows:
        statuses[status] += n
        areas[area] += n
    return {"statuses": {s.value: statuses[s] for s in Status},
            "areas": sorted(areas.items(), key=lambda kv: (-kv[1], kv[0]))}


def open_by_unit(*, session: Session, unit_ids: Iterable[int],
                 today: date) -> dict[int, Counter[str]]:
    """Unit → open, open_major, overdue, overdue_major today (units with none left out)."""
    ids = list(unit_ids)
    late = and_(Hazard.status.in_(UNFINISHED), Hazard.deadline.is_not(None),
                Hazard.deadline < today)
    major = Hazard.level == Level.MAJOR
    rows = session.execute(
        select(Hazard.unit_id, func.count(), func.count().filter(major),
               func.count().filter(late), func.count().filter(and_(late, major)))
        .where(_in_scope(session, Hazard.unit_id, ids), Hazard.status.in_(OPEN))
        .group_by(Hazard.unit_id))
    chosen = set(ids)
    return {unit_id: Counter(dict(zip(OPEN_KEYS, counts))) for unit_id, *counts in rows
            if unit_id in chosen}


def _in_scope(session: Session, column: Any, ids: list[int]) -> Any:
    """``column IN ids``, or no condition for a whole district (models.stats.every_unit)."""
    return in_units(column, None if every_unit(session, ids) else ids)


def open_total(by_unit: Mapping[int, Counter[str]], unit_ids: Iterable[int]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for unit_id in unit_ids:
        total.update(by_unit.get(unit_id, {}))
    return {key: total[key] for key in OPEN_KEYS}


def top_overdue(by_unit: Mapping[int, Counter[str]], units: Iterable[tuple[int, str]],
                limit: int = 5) -> list[dict[str, Any]]:
    """The units (id, name) with most overdue hazards today, most first (ties: tree order)."""
    ranked = [(by_unit[uid]["overdue"], i, uid, name) for i, (uid, name) in enumerate(units)
              if uid in by_unit and by_unit[uid]["overdue"]]
    ranked.sort(key=lambda r: (-r[0], r[1]))
    return [{"unit_id": uid, "unit": name, "overdue": n} for n, _, uid, name in ranked[:limit]]


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(*, session: Session, unit_ids: Iterable[int], today: date, tz: ZoneInfo,
           weeks: int = 12) -> list[dict[str, Any]]:
    """Hazards found and closed per ISO week, the last ``weeks`` weeks up to this one,
    oldest first: ``{"start": Monday, "found": n, "closed": n}``."""
    ids = list(unit_ids)
    starts = [week_start(today) - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    first, after = local_day_bounds(starts[0], starts[-1] + timedelta(days=6), tz)
    found = _by_week(session.execute(
        select(Hazard.reported_at).where(in_ids(Hazard.unit_id, ids), Hazard.reported_at >= first,
                                         Hazard.reported_at < after)).scalars(), tz)
    closed = _by_week(session.execute(
        select(Hazard.closed_at).where(in_ids(Hazard.unit_id, ids), Hazard.closed_at >= first,
                                       Hazard.closed_at < after)).scalars(), tz)
    return [{"start": s, "found": found[s], "closed": closed[s]} for s in starts]


def _by_week(moments: Iterable[datetime], tz: ZoneInfo) -> Counter[date]:
    return Counter(week_start(as_utc(m).astimezone(tz).date()) for m in moments)
