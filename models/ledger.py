"""The hazard ledger (隐患治理清单, seed 004 四(三)) of a unit and every unit below it.

Seed 004 asks each school to register every hazard with 隐患名称、隐患等级、治理措施、完成时限、
复查结果、责任部门和责任人; the export adds the number, unit, area, location, status and the
report and closing times. Rows are plain dicts, grouped by unit in tree order (a township before
its schools), so the XLSX writer and any other reader need no database.

One query reads the hazards (only the columns the ledger shows, as tuples, not ORM objects):
an export of 100,000 rows must stay well under the issue's 30 s (bench/ledger_export.py).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from models.base import as_utc
from models.hazard import LEVEL_NAMES, Hazard, Level, Status
from models.org import unit_and_descendants

# the ledger's words for the stored codes (as models.org.ROLE_NAMES does for roles)
STATUS_NAMES = {Status.REPORTED: "待制定整改方案", Status.PLANNED: "整改中",
                Status.RECTIFIED: "待复查", Status.CLOSED: "已销号"}
# not closed and not waiting for review: the hazards the 逾期 command lists
UNFINISHED = (Status.REPORTED, Status.PLANNED)

_COLUMNS = (Hazard.unit_id, Hazard.number, Hazard.area, Hazard.description, Hazard.level,
            Hazard.location, Hazard.measures, Hazard.deadline, Hazard.review_result,
            Hazard.department, Hazard.responsible, Hazard.status, Hazard.reported_at,
            Hazard.closed_at)


def local_day_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of ``start`` 00:00 and of the day after ``end`` 00:00, local time."""
    first = datetime.combine(start, time.min, tz).astimezone(timezone.utc)
    after = datetime.combine(end + timedelta(days=1), time.min, tz).astimezone(timezone.utc)
    return first, after


def ledger_rows(*, session: Session, unit_id: int, start: date, end: date, tz: ZoneInfo,
                today: date, area_names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Hazards reported from ``start`` to ``end`` (local dates, both included) in the unit and
    every unit below it: unit name → rows ordered by number. Every unit of the tree is a key,
    in tree order, even one without hazards (the summary shows who reported nothing).
    ``today`` decides which rows are overdue."""
    units = unit_and_descendants(session=session, unit_id=unit_id)
    names = {u.id: u.name for u in units}
    sheets: dict[str, list[dict[str, Any]]] = {u.name: [] for u in units}
    if not units:
        return sheets
    first, after = local_day_bounds(start, end, tz)
    query = (select(*_COLUMNS)
             .where(Hazard.unit_id.in_(list(names)), Hazard.reported_at >= first,
                    Hazard.reported_at < after)
             .order_by(Hazard.number))
    for (unit_id_, number, area, description, level, location, measures, deadline, review,
         department, responsible, status, reported_at, closed_at) in session.execute(query):
        unit = names[unit_id_]
        closed = as_utc(closed_at)
        sheets[unit].append({
            "number": number, "unit": unit, "area": area_names.get(area, area),
            "description": description, "level": level,
            "level_name": LEVEL_NAMES.get(level, level), "location": location,
            "measures": measures, "deadline": deadline, "review_result": review,
            "responsibility": " / ".join(p for p in (department, responsible) if p),
            "status": status, "status_name": STATUS_NAMES.get(status, status),
            "reported_at": as_utc(reported_at).astimezone(tz),
            "closed_at": closed.astimezone(tz) if closed else None,
            "overdue": status in UNFINISHED and deadline is not None and deadline < today,
        })
    return sheets


def ledger_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """What the 汇总 sheet and the export's message say about ``rows``."""
    counts = {"total": 0, "major": 0, "closed": 0, "open": 0, "overdue": 0}
    for row in rows:
        counts["total"] += 1
        counts["major"] += row["level"] == Level.MAJOR
        counts["closed" if row["status"] == Status.CLOSED else "open"] += 1
        counts["overdue"] += bool(row["overdue"])
    return counts
