"""Inspections led by a unit's leaders (检查) and supervision visits from above (督查, 暗访).

Seed 004: 主要负责人每半月至少带队督促检查1次，其他负责人不少于2次 — a school's or kindergarten's
组长 (LEADER) owes one inspection per half month, each 副组长 (DEPUTY) two. Half months run
from the 1st to the 15th and from the 16th to the end of the month. Each finding of an
inspection is filed as a hazard of the inspected unit (source ``inspection``, or
``supervisor`` for a visit from the township or the bureau) and linked here.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, Index, func
from sqlmodel import Field, Session, SQLModel, select

from models.base import utc_field
from models.org import Person, PersonRole, Role, Unit, UnitKind

QUOTAS = {Role.LEADER: 1, Role.DEPUTY: 2}  # inspections per half month
QUOTA_UNIT_KINDS = (UnitKind.SCHOOL, UnitKind.KINDERGARTEN)


class Kind(StrEnum):
    INSPECTION = "inspection"   # 检查: led by a leader of the unit
    SUPERVISION = "supervision"  # 督查 / 暗访: a township or bureau officer visiting


class Inspection(SQLModel, table=True):
    __table_args__ = (Index("ix_inspection_person_at", "person_id", "at"),
                      Index("ix_inspection_at", "at"))  # a period's inspections (统计)
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)  # the unit inspected
    person_id: int = Field(foreign_key="person.id")          # who led it
    kind: str = Field(max_length=16)
    announced: bool = Field(default=True)                    # False: 暗访 (unannounced)
    content: str = Field(max_length=500)
    at: datetime = utc_field()
    photo_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class InspectionFinding(SQLModel, table=True):
    __tablename__ = "inspection_finding"
    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspection.id", index=True)
    text: str = Field(max_length=500)
    hazard_id: int | None = Field(default=None, foreign_key="hazard.id")


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as [from, to) in UTC (SQLite compares stored UTC wall times)."""
        return (datetime.combine(self.start, time(), tz).astimezone(timezone.utc),
                datetime.combine(self.end + timedelta(days=1), time(), tz).astimezone(timezone.utc))


def period_of(day: date) -> Period:
    """The half month ``day`` falls in: 1st–15th or 16th–end of month."""
    if day.day <= 15:
        return Period(day.replace(day=1), day.replace(day=15))
    return Period(day.replace(day=16),
                  day.replace(day=calendar.monthrange(day.year, day.month)[1]))


def previous_period(day: date) -> Period:
    return period_of(period_of(day).start - timedelta(days=1))


@dataclass(frozen=True)
class QuotaRow:
    person_id: int
    userid: str
    name: str
    unit_id: int
    unit_name: str
    role: str
    done: int
    quota: int

    @property
    def short(self) -> bool:
        return self.done < self.quota


def record(*, session: Session, unit_id: int, person_id: int, kind: Kind, announced: bool,
           content: str, at: datetime, photo_ids: list[int]) -> Inspection:
    row = Inspection(unit_id=unit_id, person_id=person_id, kind=kind, announced=announced,
                     content=content, at=at.astimezone(timezone.utc),  # SQLite: UTC only
                     photo_ids=list(photo_ids))
    session.add(row)
    session.flush()
    return row


def add_finding(*, session: Session, inspection_id: int, text: str, hazard_id: int) -> None:
    session.add(InspectionFinding(inspection_id=inspection_id, text=text, hazard_id=hazard_id))


def quota_rows(*, session: Session, period: Period, tz: ZoneInfo,
               unit_ids: list[int] | None = None) -> list[QuotaRow]:
    """Every bound leader and deputy of a school or kindergarten (in ``unit_ids``, if given)
    with the inspections they led in ``period``; short ones first."""
    query = (select(Person.id, Person.userid, Person.name, Unit.id, Unit.name, PersonRole.role)
             .join(PersonRole, PersonRole.person_id == Person.id)
             .join(Unit, Unit.id == Person.unit_id)
             .where(PersonRole.role.in_(QUOTAS), Unit.kind.in_(QUOTA_UNIT_KINDS),
                    Person.userid.is_not(None)))
    if unit_ids is not None:
        query = query.where(Unit.id.in_(unit_ids))
    people: dict[int, tuple] = {}
    for pid, userid, name, unit_id, unit_name, role in session.exec(query).all():
        if pid not in people or role == Role.LEADER:  # a 组长 who is also 副组长 owes one
            people[pid] = (userid, name, unit_id, unit_name, role)
    start, end = period.bounds(tz)
    counts = dict(session.exec(
        select(Inspection.person_id, func.count(Inspection.id))
        .where(Inspection.kind == Kind.INSPECTION, Inspection.at >= start, Inspection.at < end,
               Inspection.person_id.in_(list(people)))
        .group_by(Inspection.person_id)).all()) if people else {}
    rows = [QuotaRow(pid, u, n, uid, un, r, counts.get(pid, 0), QUOTAS[r])
            for pid, (u, n, uid, un, r) in people.items()]
    return sorted(rows, key=lambda r: (not r.short, r.unit_name, r.role != Role.LEADER, r.name))


def visits(*, session: Session, period: Period, tz: ZoneInfo, unit_ids: list[int]) -> dict:
    """Supervision visits to ``unit_ids`` in ``period``: how many, how many unannounced."""
    start, end = period.bounds(tz)
    rows = session.exec(select(Inspection.announced, func.count(Inspection.id))
                        .where(Inspection.kind == Kind.SUPERVISION,
                               Inspection.unit_id.in_(unit_ids), Inspection.at >= start,
                               Inspection.at < end).group_by(Inspection.announced)).all()
    counts = dict(rows)
    return {"total": sum(counts.values()), "unannounced": counts.get(False, 0)}
