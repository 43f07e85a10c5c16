"""A hand-counted district for the leaders' numbers (tests/test_stats.py, test_weekly.py,
test_dashboard*.py): hazards placed directly in the demo district with known dates, levels,
areas, sources and statuses. "Today" is Friday 2026-11-20 in Shanghai.

| #   | unit   | reported | level   | area      | status    | deadline | rectified | closed |
|-----|--------|----------|---------|-----------|-----------|----------|-----------|--------|
| H1  | CD-SY  | 11-03    | general | fire      | closed    | 11-10    | 11-05     | 11-06  |
| H2  | CD-SY  | 11-05    | major   | chemicals | planned   | 11-15    |           |        |
| H3  | CD-SY  | 11-10    | general | fire      | planned   | 11-18    |           |        |
| H4  | CD-SY  | 11-12    | general | crowds    | rectified | 11-20    | 11-13     |        |
| H5  | CD-SY  | 10-08    | general | fire      | planned   | 10-30    |           |        |
| H6  | CD-YEY | 11-15    | general | food      | reported  |          |           |        |
| H7  | CD-YEY | 10-21    | general | fire      | closed    | 10-25    | 10-22     | 10-23  |
| H8  | CX-ZX  | 11-02    | general | traffic   | planned   | 11-12    |           |        |
| H9  | CX-ZX  | 11-19    | major   | buildings | reported  |          |  (found by a supervisor) |
| H10 | CX-ZX  | 10-25    | general | traffic   | planned   | 11-01    |           |        |
| H11 | CX-ZX  | 10-26    | general | fire      | planned   | 11-02    |           |        |

Overdue today (not rectified, deadline before 11-20): H2, H3, H5 (CD-SY: 3), H8, H10, H11
(CX-ZX: 3).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.hazard import Hazard, next_number
from models.org import Person, Unit

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 20)

HAZARDS = [
    # unit, reported, level, area, status, deadline, rectified, closed, source
    ("CD-SY", (11, 3), "general", "fire", "closed", (11, 10), (11, 5), (11, 6), "self"),
    ("CD-SY", (11, 5), "major", "chemicals", "planned", (11, 15), None, None, "self"),
    ("CD-SY", (11, 10), "general", "fire", "planned", (11, 18), None, None, "self_check"),
    ("CD-SY", (11, 12), "general", "crowds", "rectified", (11, 20), (11, 13), None, "self"),
    ("CD-SY", (10, 8), "general", "fire", "planned", (10, 30), None, None, "self"),
    ("CD-YEY", (11, 15), "general", "food", "reported", None, None, None, "self"),
    ("CD-YEY", (10, 21), "general", "fire", "closed", (10, 25), (10, 22), (10, 23), "self"),
    ("CX-ZX", (11, 2), "general", "traffic", "planned", (11, 12), None, None, "self"),
    ("CX-ZX", (11, 19), "major", "buildings", "reported", None, None, None, "supervisor"),
    ("CX-ZX", (10, 25), "general", "traffic", "planned", (11, 1), None, None, "self"),
    ("CX-ZX", (10, 26), "general", "fire", "planned", (11, 2), None, None, "self"),
]


def local(month_day: tuple[int, int], hour: int = 10, year: int = 2026) -> datetime:
    """A local time, as UTC (SQLite keeps only the wall time: everything stored is UTC)."""
    return datetime(year, month_day[0], month_day[1], hour, 0, tzinfo=TZ).astimezone(timezone.utc)


def unit_id(session: Session, code: str) -> int:
    return session.exec(select(Unit.id).where(Unit.code == code)).one()


def add_hazard(session: Session, *, code: str, reported: datetime, level: str = "general",
               area: str = "fire", status: str = "planned", deadline: date | None = None,
               rectified: datetime | None = None, closed: datetime | None = None,
               source: str = "self", description: str = "消防通道堵塞") -> Hazard:
    uid = unit_id(session, code)
    reporter = session.exec(select(Person.id).where(Person.unit_id == uid)
                            .order_by(Person.id)).first()
    hazard = Hazard(number=next_number(session=session, year=reported.year), unit_id=uid,
                    area=area, description=description, location="教学楼", level=level,
                    status=status, source=source, reporter_id=reporter, reported_at=reported,
                    deadline=deadline, rectified_at=rectified, closed_at=closed,
                    responsible="孙值班" if deadline else "")
    session.add(hazard)
    session.flush()
    return hazard


def seed_district(*, session: Session) -> list[str]:
    """The table of the module docstring; the hazard numbers, H1 first."""
    numbers = []
    for code, rep, level, area, status, dl, rect, closed, source in HAZARDS:
        hazard = add_hazard(session, code=code, reported=local(rep), level=level, area=area,
                            status=status, deadline=date(2026, *dl) if dl else None,
                            rectified=local(rect) if rect else None,
                            closed=local(closed) if closed else None, source=source,
                            description=f"{area} 隐患 {rep[0]}-{rep[1]}")
        numbers.append(hazard.number)
    return numbers
