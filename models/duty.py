"""Duty rosters (值班): shifts per unit, leave, and the log of slot changes.

A slot is one unit's shift of one kind (白班 / 夜班 / 24小时) starting on one local day; setting
it again replaces who is on it, and every person whose slot changed gets a notice (``DutyChange``
rows, pushed by the duty sweep). Times are UTC; ``day`` is the local date the shift starts on.
Seed 001 三(五): holidays need 24-hour duty by a named person with a leader on duty (领导带班).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Index, UniqueConstraint, or_
from sqlmodel import Field, Session, SQLModel, select

from models.base import as_utc, utc_field


class Kind(StrEnum):
    DAY = "day"      # 白班
    NIGHT = "night"  # 夜班
    FULL = "24h"     # 24小时


KIND_NAMES = {"白班": Kind.DAY, "日班": Kind.DAY, "夜班": Kind.NIGHT, "24小时": Kind.FULL,
              "全天": Kind.FULL, "24h": Kind.FULL, "24H": Kind.FULL}
KIND_LABELS = {Kind.DAY: "白班", Kind.NIGHT: "夜班", Kind.FULL: "24小时"}
# the usual hours of each kind (local time); an end at or before the start is the next day
DEFAULT_HOURS = {Kind.DAY: (time(8), time(18)), Kind.NIGHT: (time(18), time(8)),
                 Kind.FULL: (time(8), time(8))}
CHECKIN_EARLY = timedelta(minutes=60)  # 签到 is accepted this long before the start
CLOSE_LATE = timedelta(hours=2)        # 平安 / 报告 / 交班 still reach a shift this long after


class Shift(SQLModel, table=True):
    __tablename__ = "duty_shift"
    __table_args__ = (UniqueConstraint("unit_id", "day", "kind", name="uq_duty_shift_slot"),
                      Index("ix_duty_shift_start", "start_at"),
                      # a period's shifts of a whole district (统计), read from the index alone
                      Index("ix_duty_shift_day", "day", "unit_id", "checked_in_at"))
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    day: date
    kind: str = Field(max_length=8)
    start_at: datetime = utc_field()
    end_at: datetime = utc_field()
    person_id: int = Field(foreign_key="person.id", index=True)
    leader_id: int | None = Field(default=None, foreign_key="person.id")
    assigned_at: datetime = utc_field()  # when the person was put on it: escalation waits
    checked_in_at: datetime | None = utc_field(default=None)
    checkin_location: str = Field(default="", max_length=200)
    closed_at: datetime | None = utc_field(default=None)
    close_note: str = Field(default="", max_length=500)
    handover_note: str = Field(default="", max_length=500)
    escalation: int = Field(default=0)  # the check-in escalation step reached (0: none)


class Leave(SQLModel, table=True):
    __tablename__ = "duty_leave"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    start: date
    end: date  # included
    created_at: datetime = utc_field()


class DutyChange(SQLModel, table=True):
    """Someone's slot changed; ``notified_at`` is set once the notice is queued."""

    __tablename__ = "duty_change"
    __table_args__ = (Index("ix_duty_change_pending", "notified_at"),)
    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="duty_shift.id")
    person_id: int = Field(foreign_key="person.id")
    what: str = Field(max_length=16)  # assigned, removed, leader, unleader, moved
    created_at: datetime = utc_field()
    notified_at: datetime | None = utc_field(default=None)


def slot_times(day: date, kind: str, tz: ZoneInfo, start: time | None = None,
               end: time | None = None) -> tuple[datetime, datetime]:
    """The UTC start and end of a slot; missing times are the kind's usual hours."""
    default_start, default_end = DEFAULT_HOURS[Kind(kind)]
    begin = datetime.combine(day, start or default_start, tzinfo=tz)
    finish = datetime.combine(day, end or default_end, tzinfo=tz)
    if finish <= begin:
        finish += timedelta(days=1)
    return begin.astimezone(timezone.utc), finish.astimezone(timezone.utc)


def set_slot(*, session: Session, unit_id: int, day: date, kind: str, start_at: datetime,
             end_at: datetime, person_id: int, leader_id: int | None,
             now: datetime) -> tuple[Shift, list[DutyChange]]:
    """Create or replace a slot; the changes (who must be told) are logged and returned."""
    shift = session.exec(select(Shift).where(Shift.unit_id == unit_id, Shift.day == day,
                                             Shift.kind == kind)).first()
    changes: list[tuple[int, str]] = []
    if shift is None:
        shift = Shift(unit_id=unit_id, day=day, kind=kind, start_at=start_at, end_at=end_at,
                      person_id=person_id, leader_id=leader_id, assigned_at=now)
        session.add(shift)
        changes += [(person_id, "assigned")] + ([(leader_id, "leader")] if leader_id else [])
    else:
        moved = (as_utc(shift.start_at), as_utc(shift.end_at)) != (start_at, end_at)
        if shift.person_id != person_id:
            changes += [(shift.person_id, "removed"), (person_id, "assigned")]
            shift.person_id, shift.assigned_at = person_id, now
            shift.checked_in_at, shift.checkin_location, shift.escalation = None, "", 0
        elif moved:
            changes.append((person_id, "moved"))
        if shift.leader_id != leader_id:
            changes += [(p, w) for p, w in ((shift.leader_id, "unleader"), (leader_id, "leader"))
                        if p]
        elif moved and leader_id and leader_id != person_id:
            changes.append((leader_id, "moved"))
        shift.start_at, shift.end_at, shift.leader_id = start_at, end_at, leader_id
    session.flush()
    logged = [DutyChange(shift_id=shift.id, person_id=p, what=w, created_at=now)
              for p, w in changes]
    session.add_all(logged)
    session.flush()
    return shift, logged


def shifts_of(*, session: Session, unit_ids: list[int], first: date, last: date) -> list[Shift]:
    """The units' shifts starting on ``first`` .. ``last`` (local days), in time order."""
    return list(session.exec(select(Shift).where(Shift.unit_id.in_(unit_ids), Shift.day >= first,
                                                 Shift.day <= last)
                             .order_by(Shift.start_at, Shift.unit_id, Shift.id)).all())


def shift_to_check_in(*, session: Session, person_id: int, now: datetime) -> Shift | None:
    """The person's shift that 签到 is for: running or starting within the hour, earliest
    first; one already checked in only when no other is waiting."""
    rows = session.exec(select(Shift).where(Shift.person_id == person_id,
                                            Shift.start_at <= now + CHECKIN_EARLY,
                                            Shift.end_at > now, Shift.closed_at.is_(None))
                        .order_by(Shift.start_at)).all()
    waiting = [s for s in rows if s.checked_in_at is None]
    return (waiting or rows or [None])[0]


def open_shift(*, session: Session, person_id: int, now: datetime,
               include_closed: bool = False) -> Shift | None:
    """The person's shift that 平安 / 报告 (and, closed or not, 交班) speak for: begun, not
    long over."""
    query = select(Shift).where(Shift.person_id == person_id,
                                Shift.start_at <= now + CHECKIN_EARLY,
                                Shift.end_at > now - CLOSE_LATE)
    if not include_closed:
        query = query.where(Shift.closed_at.is_(None))
    return session.exec(query.order_by(Shift.start_at)).first()


def current_shift(*, session: Session, unit_id: int, now: datetime) -> Shift | None:
    """Whoever is on duty at the unit right now (the latest-starting shift if they overlap)."""
    return session.exec(select(Shift).where(Shift.unit_id == unit_id, Shift.start_at <= now,
                                            Shift.end_at > now)
                        .order_by(Shift.start_at.desc())).first()


def neighbour(*, session: Session, shift: Shift, after: bool) -> Shift | None:
    """The unit's next shift (or the previous one)."""
    query = select(Shift).where(Shift.unit_id == shift.unit_id, Shift.id != shift.id)
    if after:
        query = query.where(Shift.start_at >= shift.start_at).order_by(Shift.start_at, Shift.id)
    else:
        query = query.where(Shift.start_at < shift.start_at).order_by(Shift.start_at.desc())
    return session.exec(query).first()


def add_leave(*, session: Session, person_id: int, start: date, end: date,
              now: datetime) -> Leave:
    leave = Leave(person_id=person_id, start=start, end=end, created_at=now)
    session.add(leave)
    session.flush()
    return leave


def on_leave(*, session: Session, person_ids: set[int] | None, first: date,
             last: date) -> dict[int, list[tuple[date, date]]]:
    """Leave overlapping ``first`` .. ``last``, by person (``person_ids`` None: everyone's)."""
    query = select(Leave).where(Leave.start <= last, Leave.end >= first)
    if person_ids is not None:
        query = query.where(Leave.person_id.in_(person_ids))
    rows = session.exec(query).all()
    found: dict[int, list[tuple[date, date]]] = {}
    for leave in rows:
        found.setdefault(leave.person_id, []).append((leave.start, leave.end))
    return found


def leave_conflicts(*, session: Session | None = None, shifts: list[Shift],
                    leave: dict[int, list[tuple[date, date]]] | None = None
                    ) -> dict[int, list[int]]:
    """Shift id -> the people on it (duty or leader) who are on leave that day; ``leave``:
    the leave already read (``on_leave`` over the shifts' days), else it is read here."""
    if not shifts:
        return {}
    if leave is None:
        people = {p for s in shifts for p in (s.person_id, s.leader_id) if p}
        leave = on_leave(session=session, person_ids=people, first=min(s.day for s in shifts),
                         last=max(s.day for s in shifts))
    found: dict[int, list[int]] = {}
    for shift in shifts:
        away = [p for p in dict.fromkeys((shift.person_id, shift.leader_id)) if p and any(
            a <= shift.day <= b for a, b in leave.get(p, []))]
        if away:
            found[shift.id] = away
    return found


def shifts_with(*, session: Session, person_id: int, first: date, last: date) -> list[Shift]:
    """Shifts from ``first`` to ``last`` that put the person on duty or as leader on duty."""
    return list(session.exec(select(Shift).where(
        or_(Shift.person_id == person_id, Shift.leader_id == person_id),
        Shift.day >= first, Shift.day <= last).order_by(Shift.start_at)).all())


def covered(shifts: list[Shift]) -> bool:
    """A day's shifts give 24-hour duty with a leader: a 24小时 slot, or 白班 and 夜班, each
    with a leader on duty (seed 001: 24小时专人值班、领导带班)."""
    led = {s.kind for s in shifts if s.leader_id}
    return Kind.FULL in led or {Kind.DAY, Kind.NIGHT} <= led
