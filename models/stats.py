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
from typing import Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, func, literal, or_, select, true, union_all
from sqlmodel import Session

from models import campaign as cp
from models.base import in_ids
from models.duty import Shift
from models.hazard import Hazard, Level
from models.inspection import Inspection, Kind
from models.ledger import local_day_bounds
from models.org import PersonRole, Role, Unit
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
    return periods_stats(session=session, unit_ids=unit_ids, periods=[(start, end)], tz=tz,
                         today=today)[0]


def periods_stats(*, session: Session, unit_ids: list[int], periods: list[tuple[date, date]],
                  tz: ZoneInfo, today: date) -> list[dict[int, UnitStats]]:
    """``unit_stats`` of several periods (统计: this one and the one before) in the same few
    statements: one per source table for all of them (``_per_period``)."""
    if not unit_ids:
        return [{} for _ in periods]
    counts: list[dict[int, dict[str, int]]] = [{u: {} for u in unit_ids} for _ in periods]
    spans = [_Period.of(start, end, tz, today) for start, end in periods]
    ids = list(counts[0])
    for chunk in [None] if every_unit(session, ids) else _chunks(ids):
        for source in (_hazards, _selfchecks, _inspections, _shifts):
            for i, unit_id, values in source(session, chunk, spans):
                if unit_id in counts[i]:
                    counts[i][unit_id].update(values)
    for i, unit_id, values in _deliverables(session, set(counts[0]), spans):
        counts[i][unit_id].update(values)
    return [{u: _finish(c) for u, c in period.items()} for period in counts]


@dataclass(frozen=True)
class _Period:
    """One period's bounds: local days ``start`` .. ``end`` as UTC ``first`` .. ``after``;
    statuses as they stood at ``cutoff`` (the end of ``as_of``, the period's end or today);
    duty shifts up to ``last_shift_day`` (before today: today's may still be checked in)."""
    start: date
    end: date
    first: datetime
    after: datetime
    as_of: date
    cutoff: datetime
    last_shift_day: date

    @classmethod
    def of(cls, start: date, end: date, tz: ZoneInfo, today: date) -> "_Period":
        first, after = local_day_bounds(start, end, tz)
        as_of = min(end, today)
        return cls(start, end, first, after, as_of, local_day_bounds(as_of, as_of, tz)[1],
                   min(end, today - timedelta(days=1)))

    def moments(self, column: Any) -> Any:
        return and_(column >= self.first, column < self.after)


def _finish(c: dict[str, int]) -> UnitStats:
    found = c.get("found_general", 0) + c.get("found_major", 0)
    return UnitStats(**c, rectification_rate=rate(c.get("rectified", 0), found),
                     checkin_rate=rate(c.get("checked_in", 0), c.get("shifts", 0)))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def every_unit(session: Session, ids: Iterable[int]) -> bool:
    """Whether ``ids`` hold every unit: a whole district, whose statements then need no
    ``IN`` list (2,000 ids written into a statement cost ~4 ms of it, and 统计 has a dozen).
    The units are read once per transaction."""
    if "unit_ids" not in session.info:
        session.info["unit_ids"] = frozenset(session.execute(select(Unit.id)).scalars())
    return session.info["unit_ids"] <= set(ids)


def in_units(column: Any, ids: list[int] | None) -> Any:
    """``column IN ids``; ``None``: every unit (``every_unit``), no condition."""
    return true() if ids is None else in_ids(column, ids)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


Rows = Iterable[tuple[int, int, dict[str, int]]]  # (period index, unit id, figures)


def _per_period(session: Session, periods: list[_Period], query: Callable[[_Period], Any],
                names: tuple[str, ...]) -> Rows:
    """``query(period)`` (unit id, then ``names``) of every period in one statement: one
    ``UNION ALL`` branch each, tagged with the period's index, each one planned on its own
    (a period's own index range, not one scan over every period with the gaps between)."""
    branches = [query(p).add_columns(literal(i, Integer).label("period"))
                for i, p in enumerate(periods)]
    for unit_id, *values, i in session.execute(union_all(*branches)).all():
        yield i, unit_id, dict(zip(names, values))


HAZARD_FIGURES = ("found_general", "found_major", "rectified", "closed", "overdue")


def _hazards(session: Session, units: list[int] | None, periods: list[_Period],
             by_unit: bool = True) -> Rows:
    """``by_unit=False``: one row per period for all of ``units`` together (unit id 0)."""
    def query(p: _Period) -> Any:
        done = and_(Hazard.rectified_at.is_not(None), Hazard.rectified_at < p.cutoff)
        figures = (_count(Hazard.level == Level.GENERAL), _count(Hazard.level == Level.MAJOR),
                   _count(done),
                   _count(and_(Hazard.closed_at.is_not(None), Hazard.closed_at < p.cutoff)),
                   _count(and_(~done, Hazard.deadline.is_not(None), Hazard.deadline < p.as_of)))
        found = (in_units(Hazard.unit_id, units), Hazard.reported_at >= p.first,
                 Hazard.reported_at < p.after)
        if not by_unit:
            return select(literal(0, Integer), *figures).where(*found)
        return select(Hazard.unit_id, *figures).where(*found).group_by(Hazard.unit_id)
    return _per_period(session, periods, query, HAZARD_FIGURES)


def hazard_totals(*, session: Session, unit_ids: list[int], periods: list[tuple[date, date]],
                  tz: ZoneInfo, today: date) -> list[dict[str, Any]]:
    """The hazard figures of ``unit_stats`` (found by level, rectified, closed, overdue; with
    ``found`` and ``rate``) added up over ``unit_ids``, for each period: what 统计 shows, in
    one statement that returns a row per period instead of a row per unit and period."""
    spans = [_Period.of(start, end, tz, today) for start, end in periods]
    ids = list(dict.fromkeys(unit_ids))
    totals = [dict.fromkeys(HAZARD_FIGURES, 0) for _ in periods]
    for chunk in [None] if every_unit(session, ids) else _chunks(ids):
        for i, _, values in _hazards(session, chunk, spans, by_unit=False):
            for key, n in values.items():
                totals[i][key] += n
    for total in totals:
        total["found"] = total["found_general"] + total["found_major"]
        total["rate"] = rate(total["rectified"], total["found"])
    return totals


def _selfchecks(session: Session, units: list[int] | None, periods: list[_Period]) -> Rows:
    def query(p: _Period) -> Any:
        return (select(SelfCheckRun.unit_id, func.count(SelfCheckRun.id))
                .where(in_units(SelfCheckRun.unit_id, units),
                       SelfCheckRun.status == RunStatus.FINISHED,
                       SelfCheckRun.finished_at >= p.first, SelfCheckRun.finished_at < p.after)
                .group_by(SelfCheckRun.unit_id))
    return _per_period(session, periods, query, ("selfchecks",))


def _inspections(session: Session, units: list[int] | None, periods: list[_Period]) -> Rows:
    principals = (select(PersonRole.person_id).where(PersonRole.role == Role.LEADER)
                  .distinct().subquery())
    led = principals.c.person_id.is_not(None)

    def query(p: _Period) -> Any:
        return (select(Inspection.unit_id, _count(led), _count(~led))
                .outerjoin(principals, principals.c.person_id == Inspection.person_id)
                .where(in_units(Inspection.unit_id, units), Inspection.kind == Kind.INSPECTION,
                       Inspection.at >= p.first, Inspection.at < p.after)
                .group_by(Inspection.unit_id))
    return _per_period(session, periods, query,
                       ("inspections_principal", "inspections_other"))


def _shifts(session: Session, units: list[int] | None, periods: list[_Period]) -> Rows:
    def query(p: _Period) -> Any:
        return (select(Shift.unit_id, func.count(), func.count(Shift.checked_in_at))
                .where(in_units(Shift.unit_id, units), Shift.day >= p.start,
                       Shift.day <= p.last_shift_day)
                .group_by(Shift.unit_id))
    return _per_period(session, periods, query, ("shifts", "checked_in"))


def _deliverables(session: Session, units: set[int], periods: list[_Period]) -> Rows:
    """Deliverables due in each period, campaign by campaign (few), and the units'
    submissions of them in one query per chunk of units."""
    due = session.execute(
        select(cp.Deliverable.id, cp.Deliverable.due, cp.Campaign)
        .join(cp.Campaign, cp.Campaign.id == cp.Deliverable.campaign_id)
        .where(or_(*(and_(cp.Deliverable.due >= p.start, cp.Deliverable.due <= p.end)
                     for p in periods)))).all()
    if not due:
        return
    covered: dict[int, set[int]] = {}  # campaign id -> covered units in scope
    owed: dict[tuple[int, int], set[int]] = {}  # (period, unit) -> deliverable ids it owes
    for item_id, day, campaign in due:
        if campaign.id not in covered:
            covered[campaign.id] = units & cp.covered_unit_ids(session=session,
                                                               campaign=campaign)
        for i, p in enumerate(periods):
            if p.start <= day <= p.end:
                for unit_id in covered[campaign.id]:
                    owed.setdefault((i, unit_id), set()).add(item_id)
    item_ids = sorted({i for i, _, _ in due})
    done: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted({unit_id for _, unit_id in owed})):
        done.update(session.execute(
            select(cp.Submission.unit_id, cp.Submission.deliverable_id)
            .where(in_ids(cp.Submission.unit_id, chunk),
                   in_ids(cp.Submission.deliverable_id, item_ids))
            .distinct()).all())
    for (i, unit_id), items in owed.items():
        yield i, unit_id, {"deliverables_due": len(items),
                           "deliverables_submitted": sum((unit_id, d) in done for d in items)}
