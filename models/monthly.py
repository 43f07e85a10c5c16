"""Monthly updates (月报, seed 004 四(五)): per unit and month, the statistics table (附件 进展情况)
safebot computes, the unit's corrections kept beside it, the progress text, and the items —
at least 3 工作信息 and 1 典型案例 a month.

The calendar of month M's update: due on ``due_day`` of month M+1 (``[monthly] due_day``);
until then it may be edited freely, a submitted one too (editing sends it back to draft until
it is submitted again). After the due day only an unsubmitted update may still be completed
and submitted, marked late (迟交), for ``late_days`` more days; after that every update of the
month is locked.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, func, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, utc_field
from models.months import (Window, month_key, parse_month, previous_month,  # noqa: F401
                           window)
from models.stats import UnitStats, rate

MIN_WORK_INFO, MIN_CASES = 3, 1  # seed 004: 每月至少报送3条工作信息，1个以上典型案例
TEXT_MAX = 1000
PROGRESS_MAX = 2000


class UpdateStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class ItemKind(StrEnum):
    WORK_INFO = "work_info"  # 工作信息
    CASE = "case"            # 典型案例


OWN = "own"  # the source of an item the unit wrote itself

# the statistics table: field, the name a 更正 uses (the first is shown), whether it is a rate
FIELDS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("found_general", ("一般隐患", "排查一般隐患", "一般"), False),
    ("found_major", ("重大隐患", "排查重大隐患", "重大"), False),
    ("rectified", ("已整改", "整改"), False),
    ("closed", ("已销号", "销号"), False),
    ("overdue", ("逾期", "逾期未整改"), False),
    ("rectification_rate", ("整改率",), True),
    ("selfchecks", ("自查次数", "自查"), False),
    ("inspections_principal", ("校长带队检查", "校长检查", "主要负责人检查"), False),
    ("inspections_other", ("其他领导检查", "其他负责人检查"), False),
    ("checkin_rate", ("值班签到率", "签到率"), True),
    ("deliverables_submitted", ("交付物已交", "已交材料"), False),
    ("deliverables_due", ("交付物应交", "应交材料"), False),
)
RATE_FIELDS = frozenset(f for f, _, is_rate in FIELDS if is_rate)


class MonthlyUpdate(SQLModel, table=True):
    __tablename__ = "monthly_update"
    __table_args__ = (UniqueConstraint("unit_id", "month", name="uq_monthly_update_unit_month"),)
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    month: str = Field(max_length=7, index=True)  # YYYY-MM
    status: str = Field(default=UpdateStatus.DRAFT, max_length=16)
    computed: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime | None = utc_field(default=None)
    corrections: dict[str, Any] = Field(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))
    progress: str = Field(default="", max_length=PROGRESS_MAX)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    submitted_at: datetime | None = utc_field(default=None)
    submitted_by: int | None = Field(default=None, foreign_key="person.id")
    late: bool = Field(default=False)
    locked: bool = Field(default=False)


class WorkItem(SQLModel, table=True):
    """A 工作信息 or 典型案例. Drafted ones start undecided (``kept`` None) and the unit keeps,
    edits or drops each; the unit's own are kept from the start."""

    __tablename__ = "monthly_item"
    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(foreign_key="monthly_update.id", index=True)
    kind: str = Field(max_length=16)
    text: str = Field(max_length=TEXT_MAX)
    photo_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(default=OWN, max_length=64)  # inspection:12, selfcheck:fire, hazard:3 ...
    kept: bool | None = Field(default=None)
    edited: bool = Field(default=False)
    seq: int = Field(default=0)


def get_update(*, session: Session, unit_id: int, month: str) -> MonthlyUpdate | None:
    return session.exec(select(MonthlyUpdate).where(MonthlyUpdate.unit_id == unit_id,
                                                    MonthlyUpdate.month == month)).first()


def get_or_create(*, session: Session, unit_id: int, month: str, now: datetime) -> MonthlyUpdate:
    """The unit's update of ``month``; two people starting it at once get the same row."""
    insert_ignore(session, MonthlyUpdate.__table__, {
        "unit_id": unit_id, "month": month, "status": UpdateStatus.DRAFT, "computed": {},
        "corrections": {}, "progress": "", "created_at": now, "updated_at": now,
        "late": False, "locked": False})
    return get_update(session=session, unit_id=unit_id, month=month)


def set_computed(*, session: Session, row: MonthlyUpdate, stats: UnitStats, now: datetime) -> None:
    row.computed, row.computed_at = stats.as_dict(), now


def field_of(name: str) -> str | None:
    """The field a 更正 names (its shown name or an alias)."""
    for key, names, _ in FIELDS:
        if name in names:
            return key
    return None


def set_correction(*, session: Session, row: MonthlyUpdate, field: str, value: float | None,
                   now: datetime) -> None:
    """Keep ``value`` beside the computed figure (None: back to the computed one)."""
    corrections = dict(row.corrections)
    if value is None:
        corrections.pop(field, None)
    else:
        corrections[field] = value
    row.corrections, row.updated_at = corrections, now


def figures(row: MonthlyUpdate) -> list[dict[str, Any]]:
    """The table as shown: each field's computed value and the correction, if any."""
    out = []
    for key, names, is_rate in FIELDS:
        computed = row.computed.get(key)
        corrected = row.corrections.get(key)
        out.append({"key": key, "name": names[0], "rate": is_rate, "computed": computed,
                    "corrected": corrected, "value": computed if corrected is None else corrected})
    return out


def reported(row: MonthlyUpdate) -> dict[str, Any]:
    """Field → the figure the unit reports (its correction, else the computed one); a rate
    left uncorrected follows corrected counts (整改率 from 已整改 and the numbers found)."""
    values = {f["key"]: f["value"] for f in figures(row)}
    c = row.corrections
    if "rectification_rate" not in c and {"found_general", "found_major", "rectified"} & set(c):
        values["rectification_rate"] = rate(values["rectified"] or 0,
                                            (values["found_general"] or 0)
                                            + (values["found_major"] or 0))
    return values


def items(*, session: Session, update_id: int, kept: bool | None = True,
          any_decision: bool = False) -> list[WorkItem]:
    query = select(WorkItem).where(WorkItem.update_id == update_id)
    if not any_decision:
        query = query.where(WorkItem.kept.is_(None) if kept is None else WorkItem.kept == kept)
    return list(session.exec(query.order_by(WorkItem.kind.desc(), WorkItem.seq,
                                            WorkItem.id)).all())


def add_candidates(*, session: Session, update_id: int,
                   candidates: list[tuple[str, str, str, list[int]]]) -> int:
    """Add drafted (kind, source, text, photo ids) items not drafted before (by source);
    how many were new."""
    known = set(session.exec(select(WorkItem.source).where(WorkItem.update_id == update_id)))
    seq = _next_seq(session, update_id)
    added = 0
    for kind, source, text, photo_ids in candidates:
        if source in known:
            continue
        known.add(source)
        session.add(WorkItem(update_id=update_id, kind=kind, text=text[:TEXT_MAX],
                             photo_ids=list(photo_ids), source=source, seq=seq + added))
        added += 1
    session.flush()
    return added


def add_item(*, session: Session, update_id: int, kind: ItemKind, text: str,
             photo_ids: list[int]) -> WorkItem:
    item = WorkItem(update_id=update_id, kind=kind, text=text[:TEXT_MAX],
                    photo_ids=list(photo_ids), source=OWN, kept=True,
                    seq=_next_seq(session, update_id))
    session.add(item)
    session.flush()
    return item


def decide(*, session: Session, item_id: int, kept: bool, text: str | None = None) -> WorkItem:
    item = session.get(WorkItem, item_id)
    item.kept = kept
    if text is not None and text != item.text:
        item.text, item.edited = text[:TEXT_MAX], True
    return item


def add_photos(*, session: Session, item_id: int, photo_ids: list[int]) -> WorkItem:
    item = session.get(WorkItem, item_id)
    item.photo_ids = [*item.photo_ids, *photo_ids]
    return item


def _next_seq(session: Session, update_id: int) -> int:
    last = session.exec(select(func.max(WorkItem.seq))
                        .where(WorkItem.update_id == update_id)).one()
    return (last or 0) + 1


def missing(*, row: MonthlyUpdate, kept: list[WorkItem]) -> dict[str, int]:
    """What a submission still lacks: the progress text (1) and how many items of each kind;
    empty when it may be submitted."""
    work = sum(i.kind == ItemKind.WORK_INFO for i in kept)
    cases = sum(i.kind == ItemKind.CASE for i in kept)
    gaps = {"progress": int(not row.progress.strip()),
            "work_info": max(0, MIN_WORK_INFO - work), "cases": max(0, MIN_CASES - cases)}
    return {k: v for k, v in gaps.items() if v}


def submit(*, session: Session, row: MonthlyUpdate, person_id: int, now: datetime,
           today: date, win: Window) -> None:
    row.status, row.submitted_at, row.submitted_by = UpdateStatus.SUBMITTED, now, person_id
    row.late, row.updated_at = today > win.due, now


def reopen(*, session: Session, row: MonthlyUpdate, now: datetime) -> None:
    """A submitted update edited before its due day goes back to draft until resubmitted."""
    row.status, row.submitted_at, row.submitted_by, row.late = (UpdateStatus.DRAFT, None,
                                                                None, False)
    row.updated_at = now


def submitted_units(*, session: Session, month: str, unit_ids: list[int]) -> set[int]:
    rows = session.exec(select(MonthlyUpdate.unit_id).where(
        MonthlyUpdate.month == month, MonthlyUpdate.status == UpdateStatus.SUBMITTED,
        MonthlyUpdate.unit_id.in_(unit_ids)))
    return set(rows.all())


def lock_month(*, session: Session, month: str) -> int:
    """Mark every update of ``month`` locked (its late window is over); how many changed."""
    result = session.execute(update(MonthlyUpdate)
                             .where(MonthlyUpdate.month == month,
                                    MonthlyUpdate.locked == False)  # noqa: E712
                             .values(locked=True))
    return result.rowcount or 0


def updates_of(*, session: Session, month: str, unit_ids: list[int]) -> dict[int, MonthlyUpdate]:
    rows = session.exec(select(MonthlyUpdate).where(MonthlyUpdate.month == month,
                                                    MonthlyUpdate.unit_id.in_(unit_ids)))
    return {r.unit_id: r for r in rows.all()}
