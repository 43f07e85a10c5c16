"""Hazards (隐患): the ledger of seed 004 and the closed loop of seed 001.

A hazard runs reported → planned (整改方案 with 责任、措施、资金、时限、预案) → rectified (整改完成)
→ closed (复查通过, 销号); a failed review sends it back to planned, a leader may reopen a closed
one. Every step is an append-only ``HazardEvent``. Numbers look like ``YH2026-000123``: the
year of the report and a per-year sequence taken from a counter row, so two instances never
hand out the same number.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, utc_field

NUMBER_RE = re.compile(r"YH\s*(\d{4})\s*-\s*(\d{1,6})", re.IGNORECASE)


class Level(StrEnum):
    GENERAL = "general"  # 一般事故隐患
    MAJOR = "major"      # 重大事故隐患


class Status(StrEnum):
    REPORTED = "reported"    # 待制定整改方案
    PLANNED = "planned"      # 整改中
    RECTIFIED = "rectified"  # 待复查
    CLOSED = "closed"        # 已销号


OPEN = (Status.REPORTED, Status.PLANNED, Status.RECTIFIED)
LEVEL_NAMES = {Level.GENERAL: "一般", Level.MAJOR: "重大"}


class HazardCounter(SQLModel, table=True):
    __tablename__ = "hazard_counter"
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = Field(default=0)


class Hazard(SQLModel, table=True):
    __table_args__ = (Index("ix_hazard_unit_status", "unit_id", "status"),
                      Index("ix_hazard_status_deadline", "status", "deadline"),
                      # a period's hazards (统计, 导出台账, the weekly digest) of a whole district
                      Index("ix_hazard_reported_at", "reported_at"))
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=16, unique=True)
    unit_id: int = Field(foreign_key="unit.id")
    area: str = Field(max_length=32)                      # checklist area key
    description: str = Field(max_length=500)              # 隐患名称
    location: str = Field(max_length=100)
    level: str = Field(max_length=16)
    status: str = Field(max_length=16)
    source: str = Field(default="self", max_length=16)    # self | self_check | supervisor
    reporter_id: int = Field(foreign_key="person.id")
    reported_at: datetime = utc_field()
    # the rectification plan (整改方案): seed 001's 责任、措施、资金、时限、预案
    department: str = Field(default="", max_length=100)   # 责任部门
    responsible: str = Field(default="", max_length=50)   # 责任人
    responsible_userid: str | None = Field(default=None, max_length=64)
    measures: str = Field(default="", max_length=1000)    # 治理措施
    funds: str = Field(default="", max_length=100)        # 资金
    deadline: date | None = Field(default=None)           # 完成时限
    contingency: str = Field(default="", max_length=1000)  # 预案
    rectified_by: int | None = Field(default=None, foreign_key="person.id")
    rectified_at: datetime | None = utc_field(default=None)
    review_result: str = Field(default="", max_length=500)  # 复查结果
    closed_at: datetime | None = utc_field(default=None)
    extension_deadline: date | None = Field(default=None)   # a pending 延期 request
    extension_reason: str = Field(default="", max_length=300)
    extension_by: int | None = Field(default=None, foreign_key="person.id")


class HazardPhoto(SQLModel, table=True):
    __tablename__ = "hazard_photo"
    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    photo_id: int = Field(foreign_key="photo.id")
    stage: str = Field(max_length=16)  # report | rectified


class HazardEvent(SQLModel, table=True):
    __tablename__ = "hazard_event"
    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    at: datetime = utc_field()
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    actor_name: str = Field(max_length=50)
    action: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def normalise_number(text: str) -> str | None:
    """``yh2026-123`` → ``YH2026-000123``; None if ``text`` holds no hazard number."""
    match = NUMBER_RE.search(text)
    if not match:
        return None
    return f"YH{match.group(1)}-{int(match.group(2)):06d}"


def split_number(text: str) -> tuple[str | None, str]:
    """The hazard number in ``text`` and the text after it."""
    match = NUMBER_RE.search(text)
    if not match:
        return None, text.strip()
    return f"YH{match.group(1)}-{int(match.group(2)):06d}", text[match.end():].strip()


def next_number(*, session: Session, year: int) -> str:
    """Take the next number of ``year``; the counter row serialises concurrent reports."""
    insert_ignore(session, HazardCounter.__table__, {"year": year, "last": 0})
    last = session.execute(update(HazardCounter).where(HazardCounter.year == year)
                           .values(last=HazardCounter.last + 1)
                           .returning(HazardCounter.last)).scalar_one()
    return f"YH{year}-{last:06d}"


def record_event(*, session: Session, hazard_id: int, at: datetime, actor_id: int | None,
                 actor_name: str, action: str, **detail: Any) -> None:
    session.add(HazardEvent(hazard_id=hazard_id, at=at, actor_id=actor_id,
                            actor_name=actor_name, action=action, detail=detail))


def by_number(*, session: Session, number: str) -> Hazard | None:
    return session.exec(select(Hazard).where(Hazard.number == number)).first()


def history(*, session: Session, hazard_id: int) -> list[HazardEvent]:
    return list(session.exec(select(HazardEvent).where(HazardEvent.hazard_id == hazard_id)
                             .order_by(HazardEvent.at, HazardEvent.id)).all())


def photos(*, session: Session, hazard_id: int) -> dict[str, list[int]]:
    rows = session.exec(select(HazardPhoto).where(HazardPhoto.hazard_id == hazard_id)
                        .order_by(HazardPhoto.id)).all()
    out: dict[str, list[int]] = {"report": [], "rectified": []}
    for row in rows:
        out.setdefault(row.stage, []).append(row.photo_id)
    return out


def attach_photos(*, session: Session, hazard_id: int, photo_ids: list[int], stage: str) -> None:
    for photo_id in photo_ids:
        session.add(HazardPhoto(hazard_id=hazard_id, photo_id=photo_id, stage=stage))
