"""Collecting the facts ``models.grading`` grades: one ``Record`` per school and kindergarten
of a scope, a handful of grouped queries whatever the number of units."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlmodel import Session

from bot.dates import add_months
from models.base import as_utc
from models.grading import Record, Window
from models.hazard import Hazard
from models.inspection import Inspection, Kind
from models.ledger import local_day_bounds
from models.leader_monthly import Calendar, monthly_on_time
from models.org import Unit, UnitKind, unit_and_descendants
from models.selfcheck import RunStatus, SelfCheckRun

GRADED_KINDS = (UnitKind.SCHOOL, UnitKind.KINDERGARTEN)
SUPERVISOR_SOURCE = "supervisor"


def default_window(today: date) -> Window:
    """The last three full months before the one ``today`` is in."""
    first = today.replace(day=1)
    return Window(add_months(first, -3), first - timedelta(days=1))


def window_for(text: str, *, today: date) -> Window | None:
    """``""``/近三月: the default; 上月: last month; 本月: this month so far; else None."""
    first = today.replace(day=1)
    return {"": default_window(today), "近三月": default_window(today),
            "上月": Window(add_months(first, -1), first - timedelta(days=1)),
            "本月": Window(first, today)}.get(text.strip())


def graded_units(*, session: Session, unit_id: int) -> list[Unit]:
    return [u for u in unit_and_descendants(session=session, unit_id=unit_id)
            if u.kind in GRADED_KINDS]


def collect(*, session: Session, unit_id: int, window: Window, today: date, tz: ZoneInfo,
            cal: Calendar) -> list[Record]:
    """A ``Record`` for every school and kindergarten in the scope of ``unit_id``."""
    units = graded_units(session=session, unit_id=unit_id)
    ids = [u.id for u in units]
    if not ids:
        return []
    first, after = local_day_bounds(window.start, window.end, tz)
    runs = dict(session.execute(
        select(SelfCheckRun.unit_id, func.count())
        .where(SelfCheckRun.unit_id.in_(ids), SelfCheckRun.status == RunStatus.FINISHED,
               SelfCheckRun.finished_at >= first, SelfCheckRun.finished_at < after)
        .group_by(SelfCheckRun.unit_id)).all())
    own: Counter[int] = Counter()
    found_above: Counter[int] = Counter()
    for uid, source, n in session.execute(
            select(Hazard.unit_id, Hazard.source, func.count())
            .where(Hazard.unit_id.in_(ids), Hazard.reported_at >= first,
                   Hazard.reported_at < after)
            .group_by(Hazard.unit_id, Hazard.source)).all():
        (found_above if source == SUPERVISOR_SOURCE else own)[uid] += n
    due, on_time = _rectified_on_time(session, ids, window, today, tz)
    owed, months_ok = monthly_on_time(session=session, unit_ids=ids, start=window.start,
                                      end=window.end, today=today, cal=cal)
    visits = {uid: as_utc(at).astimezone(tz).date() for uid, at in session.execute(
        select(Inspection.unit_id, func.max(Inspection.at))
        .where(Inspection.unit_id.in_(ids), Inspection.kind == Kind.SUPERVISION)
        .group_by(Inspection.unit_id)).all()}
    return [Record(unit_id=u.id, unit=u.name, code=u.code, selfchecks=runs.get(u.id, 0),
                   own_found=own[u.id], supervisor_found=found_above[u.id], due=due[u.id],
                   on_time=on_time[u.id], months_owed=owed.get(u.id, 0),
                   months_on_time=months_ok.get(u.id, 0), last_visit=visits.get(u.id))
            for u in units]


def _rectified_on_time(session: Session, ids: list[int], window: Window, today: date,
                       tz: ZoneInfo) -> tuple[Counter[int], Counter[int]]:
    """Hazards due in the window (the deadline passed, or rectified already) and those of
    them rectified by their deadline (local date)."""
    due: Counter[int] = Counter()
    on_time: Counter[int] = Counter()
    rows = session.execute(
        select(Hazard.unit_id, Hazard.deadline, Hazard.rectified_at)
        .where(Hazard.unit_id.in_(ids), Hazard.deadline >= window.start,
               Hazard.deadline <= window.end,
               or_(Hazard.deadline < today, Hazard.rectified_at.is_not(None)))).all()
    for uid, deadline, rectified_at in rows:
        due[uid] += 1
        if rectified_at is not None and as_utc(rectified_at).astimezone(tz).date() <= deadline:
            on_time[uid] += 1
    return due, on_time
