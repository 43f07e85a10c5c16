"""A unit's statistics for a period: the figures of the monthly report's table (seed 004
四(五), 附件 进展情况) and of the leaders' views.

``unit_stats`` computes every unit asked for in a fixed handful of grouped queries (one per
source table, never one per unit), so 2,000 units cost what 2 do. Periods are local days
``start`` .. ``end`` (both included) in ``tz``; times are stored UTC.

Definitions (``UnitStats``):

- ``found_general`` / ``found_major``: hazards of the unit *reported* in the period, by level
  (all sources: the unit's own reports, self-checks, inspections, supervision visits).
  Everything below about hazards is about this cohort — the hazards found in the period.
- ``cutoff``: the end of the period, or the end of ``today`` when the period runs past today
  (a month in progress is counted "so far"). Statuses are read as they stood at the cutoff
  from the hazard's own timestamps, so a past month's figures do not move as later work is
  done (a rectification rejected or a hazard reopened after the cutoff clears its timestamp and
  so no longer counts: the record as it stands wins).
- ``rectified`` (已整改): rectification completed before the cutoff (``rectified_at``), closed
  ones included — so ``closed <= rectified <= found``.
- ``closed`` (已销号): review passed before the cutoff (``closed_at``).
- ``overdue`` (逾期): not rectified at the cutoff and past its deadline on the cutoff day
  (``deadline`` before the cutoff's local date; a hazard on its deadline day is not yet
  overdue, as in the ledger).
- ``rectification_rate`` (整改率): ``rectified / found`` (the same as 待复查 + 已销号 over
  found), a fraction 0..1; None when nothing was found.
- ``selfchecks`` (自查次数): self-check runs the unit *finished* in the period (abandoned and
  open runs do not count).
- ``inspections_principal`` (校长带队检查): inspections (``检查``, kind ``inspection``) of the
  unit in the period led by someone holding the 组长 role (``Role.LEADER``);
  ``inspections_other`` (其他领导检查): those led by anyone else (副组长 and others).
  Supervision visits from above (督查, 暗访) are not the unit's own and count in neither.
- ``shifts`` / ``checked_in`` / ``checkin_rate`` (值班签到率): the unit's duty shifts whose local
  day is in the period *and before today* (today's shifts may still be checked in), how many
  of them were checked in, and ``checked_in / shifts``; None when there were no such shifts.
- ``deliverables_due`` (交付物应交): campaign deliverables due in the period of campaigns
  covering the unit; ``deliverables_submitted`` (已交): how many of those the unit has
  submitted (at any time, late ones included).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from models import campaign as cp
from models.base import in_ids
from models.duty import Shift
from models.hazard import Hazard, Level
from models.inspection import Inspection, Kind
from models.ledger import local_day_bounds
from models.org import PersonRole, Role
from models.selfcheck import RunStatus, SelfCheckRun

CHUNK = 5000  # unit ids per IN list (written into the SQL, models.base.in_ids: no bound
#               parameters): each chunk scans the period again, so few and large


@dataclass(frozen=True)
class UnitStats:
    found_general: int = 0
    found_major: int = 0
    rectified: int = 0
    closed: int = 0
    overdue: int = 0
    rectification_rate: float | None = None
    selfchecks: int = 0
    inspections_principal: int = 0
    inspections_other: int = 0
    checkin_rate: float | None = None
    deliverables_submitted: int = 0
    deliverables_due: int = 0
    shifts: int = 0
    checked_in: int = 0

    @property
    def found(self) -> int:
        return self.found_general + self.found_major

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UnitStats":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def unit_stats(*, session: Session, unit_ids: list[int], start: date, end: date, tz: ZoneInfo,
               today: date) -> dict[int, UnitStats]:
    """Every unit of ``unit_ids`` (each a key, zeros when it has no records) → its figures for
    the local days ``start`` .. ``end``; see the module docstring for what each one counts."""
    counts: dict[int, dict[str, int]] = {u: {} for u in unit_ids}
    if not unit_ids:
        return {}
    first, after = local_day_bounds(start, end, tz)
    as_of = min(end, today)
    cutoff = local_day_bounds(as_of, as_of, tz)[1]
    for chunk in _chunks(list(counts)):
        for source in (_hazards(session, chunk, first, after, cutoff, as_of),
                       _selfchecks(session, chunk, first, after),
                       _inspections(session, chunk, first, after),
                       _shifts(session, chunk, start, min(end, today - timedelta(days=1)))):
            for unit_id, values in source:
                counts[unit_id].update(values)
    for unit_id, values in _deliverables(session, set(counts), start, end):
        counts[unit_id].update(values)
    return {u: _finish(c) for u, c in counts.items()}


def _finish(c: dict[str, int]) -> UnitStats:
    found = c.get("found_general", 0) + c.get("found_major", 0)
    return UnitStats(**c, rectification_rate=rate(c.get("rectified", 0), found),
                     checkin_rate=rate(c.get("checked_in", 0), c.get("shifts", 0)))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


Rows = Iterable[tuple[int, dict[str, int]]]


def _hazards(session: Session, units: list[int], first: datetime, after: datetime,
             cutoff: datetime, as_of: date) -> Rows:
    done = and_(Hazard.rectified_at.is_not(None), Hazard.rectified_at < cutoff)
    query = (select(Hazard.unit_id,
                    _count(Hazard.level == Level.GENERAL), _count(Hazard.level == Level.MAJOR),
                    _count(done),
                    _count(and_(Hazard.closed_at.is_not(None), Hazard.closed_at < cutoff)),
                    _count(and_(~done, Hazard.deadline.is_not(None), Hazard.deadline < as_of)))
             .where(in_ids(Hazard.unit_id, units), Hazard.reported_at >= first,
                    Hazard.reported_at < after)
             .group_by(Hazard.unit_id))
    for unit_id, general, major, rectified, closed, overdue in session.execute(query):
        yield unit_id, {"found_general": general, "found_major": major, "rectified": rectified,
                        "closed": closed, "overdue": overdue}


def _selfchecks(session: Session, units: list[int], first: datetime, after: datetime) -> Rows:
    query = (select(SelfCheckRun.unit_id, func.count(SelfCheckRun.id))
             .where(in_ids(SelfCheckRun.unit_id, units), SelfCheckRun.status == RunStatus.FINISHED,
                    SelfCheckRun.finished_at >= first, SelfCheckRun.finished_at < after)
             .group_by(SelfCheckRun.unit_id))
    for unit_id, n in session.execute(query):
        yield unit_id, {"selfchecks": n}


def _inspections(session: Session, units: list[int], first: datetime, after: datetime) -> Rows:
    principals = (select(PersonRole.person_id).where(PersonRole.role == Role.LEADER)
                  .distinct().subquery())
    led = principals.c.person_id.is_not(None)
    query = (select(Inspection.unit_id, _count(led), _count(~led))
             .outerjoin(principals, principals.c.person_id == Inspection.person_id)
             .where(in_ids(Inspection.unit_id, units), Inspection.kind == Kind.INSPECTION,
                    Inspection.at >= first, Inspection.at < after)
             .group_by(Inspection.unit_id))
    for unit_id, principal, other in session.execute(query):
        yield unit_id, {"inspections_principal": principal, "inspections_other": other}


def _shifts(session: Session, units: list[int], first: date, last: date) -> Rows:
    if last < first:
        return
    query = (select(Shift.unit_id, func.count(Shift.id), _count(Shift.checked_in_at.is_not(None)))
             .where(in_ids(Shift.unit_id, units), Shift.day >= first, Shift.day <= last)
             .group_by(Shift.unit_id))
    for unit_id, shifts, checked_in in session.execute(query):
        yield unit_id, {"shifts": shifts, "checked_in": checked_in}


def _deliverables(session: Session, units: set[int], start: date, end: date) -> Rows:
    """Deliverables due in the period, campaign by campaign (few), and the unit's submissions
    of them in one query per chunk of units."""
    due = session.execute(select(cp.Deliverable.id, cp.Campaign)
                          .join(cp.Campaign, cp.Campaign.id == cp.Deliverable.campaign_id)
                          .where(cp.Deliverable.due >= start, cp.Deliverable.due <= end)).all()
    if not due:
        return
    covered: dict[int, set[int]] = {}  # campaign id -> covered units in scope
    owed: dict[int, set[int]] = {}     # unit -> deliverable ids it owes
    for item_id, campaign in due:
        if campaign.id not in covered:
            covered[campaign.id] = units & cp.covered_unit_ids(session=session,
                                                               campaign=campaign)
        for unit_id in covered[campaign.id]:
            owed.setdefault(unit_id, set()).add(item_id)
    item_ids = [i for i, _ in due]
    done: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted(owed)):
        done.update(session.execute(
            select(cp.Submission.unit_id, cp.Submission.deliverable_id)
            .where(in_ids(cp.Submission.unit_id, chunk),
                   in_ids(cp.Submission.deliverable_id, item_ids))
            .distinct()).all())
    for unit_id, items in owed.items():
        yield unit_id, {"deliverables_due": len(items),
                        "deliverables_submitted": sum((unit_id, i) in done for i in items)}
