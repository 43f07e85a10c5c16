"""What the dashboard pages show, read in one transaction per page.

Every function takes the scope's unit ids (from the signed link, never from the query string)
and returns plain data for the templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from bot.dashboard.signing import Grant
from models import scope_stats
from models.base import as_utc
from models.hazard import LEVEL_NAMES, Hazard, Level, Status
from models.ledger import STATUS_NAMES, UNFINISHED
from models.org import LEADERS, Person, PersonRole, Unit, unit_and_descendants
from models.stats import unit_stats

PER_PAGE = 50


@dataclass(frozen=True)
class Viewer:
    name: str
    unit: str
    units: list[tuple[int, str]]   # the scope, in tree order

    @property
    def unit_ids(self) -> list[int]:
        return [uid for uid, _ in self.units]


@dataclass(frozen=True)
class Filters:
    unit: int | None = None
    status: str = ""
    level: str = ""
    area: str = ""
    page: int = 1


def viewer(*, session: Session, grant: Grant) -> Viewer | None:
    """Who the link was made for, if they still lead the unit it was made for."""
    person = session.get(Person, grant.person_id)
    if person is None or person.unit_id != grant.unit_id:
        return None
    roles = set(session.execute(select(PersonRole.role)
                                .where(PersonRole.person_id == person.id)).scalars())
    if not roles & LEADERS:
        return None
    units = unit_and_descendants(session=session, unit_id=grant.unit_id)
    return Viewer(name=person.name, unit=units[0].name, units=[(u.id, u.name) for u in units])


def overview(*, session: Session, viewer: Viewer, today: date, tz: ZoneInfo,
             areas: dict[str, str]) -> dict[str, Any]:
    """This month's figures, today's open and overdue, the last 12 weeks for the charts."""
    ids, first = viewer.unit_ids, today.replace(day=1)
    month = unit_stats(session=session, unit_ids=ids, start=first, end=today, tz=tz,
                       today=today)
    by_unit = scope_stats.open_by_unit(session=session, unit_ids=ids, today=today)
    weeks = scope_stats.weekly(session=session, unit_ids=ids, today=today, tz=tz)
    recent = scope_stats.breakdown(session=session, unit_ids=ids, start=weeks[0]["start"],
                                   end=today, tz=tz)
    return {"totals": scope_stats.add_up(month.values()),
            "statuses": scope_stats.breakdown(session=session, unit_ids=ids, start=first,
                                              end=today, tz=tz)["statuses"],
            "now": scope_stats.open_total(by_unit, ids),
            "top": scope_stats.top_overdue(by_unit, viewer.units),
            "weeks": weeks, "since": weeks[0]["start"],
            "areas": [(areas.get(a, a), n) for a, n in recent["areas"]]}


def _row(h: Hazard, unit: str, today: date, tz: ZoneInfo, areas: dict[str, str]) -> dict:
    late = h.status in UNFINISHED and h.deadline is not None and h.deadline < today
    return {"number": h.number, "unit": unit, "area": areas.get(h.area, h.area),
            "description": h.description, "location": h.location, "level": h.level,
            "level_name": LEVEL_NAMES.get(h.level, h.level), "status": h.status,
            "status_name": STATUS_NAMES.get(h.status, h.status), "deadline": h.deadline,
            "responsible": " / ".join(p for p in (h.department, h.responsible) if p),
            "reported": as_utc(h.reported_at).astimezone(tz).date(), "overdue": late,
            "days_over": (today - h.deadline).days if late else 0}


def ledger(*, session: Session, unit_ids: list[int], filters: Filters, today: date,
           tz: ZoneInfo, areas: dict[str, str]) -> dict[str, Any]:
    """The hazards of the scope (or of one unit in it), newest first, a page at a time."""
    ids = [filters.unit] if filters.unit is not None else unit_ids
    where = [Hazard.unit_id.in_(ids)]
    if filters.status:
        where.append(Hazard.status == filters.status)
    if filters.level:
        where.append(Hazard.level == filters.level)
    if filters.area:
        where.append(Hazard.area == filters.area)
    total = session.execute(select(func.count()).select_from(Hazard).where(*where)).scalar_one()
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, filters.page), pages)
    rows = session.execute(
        select(Hazard, Unit.name).join(Unit, Unit.id == Hazard.unit_id).where(*where)
        .order_by(Hazard.reported_at.desc(), Hazard.id.desc())
        .offset((page - 1) * PER_PAGE).limit(PER_PAGE)).all()
    return {"rows": [_row(h, name, today, tz, areas) for h, name in rows], "total": total,
            "page": page, "pages": pages}


def overdue(*, session: Session, unit_ids: list[int], today: date, tz: ZoneInfo,
            areas: dict[str, str], limit: int = 500) -> list[dict[str, Any]]:
    """Overdue hazards, majors first, then the longest overdue."""
    rows = session.execute(
        select(Hazard, Unit.name).join(Unit, Unit.id == Hazard.unit_id)
        .where(Hazard.unit_id.in_(unit_ids), Hazard.status.in_(UNFINISHED),
               Hazard.deadline < today)
        .order_by(Hazard.level.desc(), Hazard.deadline, Hazard.id).limit(limit)).all()
    return [_row(h, name, today, tz, areas) for h, name in rows]


def choices(areas: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The values a ledger filter may take (anything else is ignored)."""
    return {"status": [(s.value, STATUS_NAMES[s]) for s in Status],
            "level": [(lv.value, LEVEL_NAMES[lv]) for lv in Level],
            "area": sorted(areas.items())}
