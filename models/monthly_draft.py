"""The narrative safebot drafts for a monthly update, from the unit's own records of the month:

- 工作信息 candidates: each inspection of the unit (its leaders' 检查 and visits from above),
  its finished self-checks one per checklist area, and each campaign deliverable it submitted;
- 典型案例 candidates: the hazards it closed in the month (major ones first), with their
  before and after photos.

Each candidate is plain data and a template name (the words live in ``templates/monthly``);
``source`` names the record it came from, so drafting again adds only what is new.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from models import campaign as cp
from models.base import as_utc
from models.hazard import LEVEL_NAMES, Hazard, HazardPhoto, Level
from models.inspection import Inspection, InspectionFinding, Kind
from models.ledger import local_day_bounds
from models.monthly import ItemKind
from models.org import Person, PersonRole, Role, Unit
from models.selfcheck import Answer, RunStatus, SelfCheckAnswer, SelfCheckRun

MAX_WORK_INFO = 12
MAX_CASES = 5


@dataclass(frozen=True)
class Candidate:
    kind: str
    source: str
    template: str
    data: dict[str, Any]
    photo_ids: list[int] = field(default_factory=list)


def draft(*, session: Session, unit_id: int, first: date, last: date, tz: ZoneInfo,
          area_names: dict[str, str]) -> list[Candidate]:
    """The candidates of the unit's month ``first`` .. ``last``, work information first."""
    start, after = local_day_bounds(first, last, tz)
    work = (_inspections(session, unit_id, start, after, tz)
            + _selfchecks(session, unit_id, start, after, area_names, first)
            + _deliverables(session, unit_id, start, after, tz))
    return work[:MAX_WORK_INFO] + _cases(session, unit_id, start, after, tz)


def _day(moment: datetime, tz: ZoneInfo) -> date:
    return as_utc(moment).astimezone(tz).date()


def _inspections(session: Session, unit_id: int, start: datetime, after: datetime,
                 tz: ZoneInfo) -> list[Candidate]:
    rows = session.execute(select(Inspection, Person.name, Person.unit_id)
                           .join(Person, Person.id == Inspection.person_id)
                           .where(Inspection.unit_id == unit_id, Inspection.at >= start,
                                  Inspection.at < after)
                           .order_by(Inspection.at, Inspection.id)).all()
    if not rows:
        return []
    ids = [r[0].id for r in rows]
    findings = dict(session.execute(select(InspectionFinding.inspection_id, func.count())
                                    .where(InspectionFinding.inspection_id.in_(ids))
                                    .group_by(InspectionFinding.inspection_id)).all())
    leaders = set(session.execute(select(PersonRole.person_id).where(
        PersonRole.person_id.in_({r[0].person_id for r in rows}),
        PersonRole.role == Role.LEADER)).scalars())
    visitors = {u.id: u.name for u in session.execute(select(Unit).where(
        Unit.id.in_({r[2] for r in rows}))).scalars()}
    out = []
    for inspection, name, person_unit in rows:
        visit = inspection.kind == Kind.SUPERVISION
        out.append(Candidate(ItemKind.WORK_INFO, f"inspection:{inspection.id}",
                             "monthly/candidate_inspection.txt.j2", {
                                 "day": _day(inspection.at, tz), "name": name,
                                 "principal": inspection.person_id in leaders and not visit,
                                 "visit": visit, "announced": inspection.announced,
                                 "from_unit": visitors.get(person_unit, "") if visit else "",
                                 "content": inspection.content,
                                 "findings": findings.get(inspection.id, 0)},
                             list(inspection.photo_ids)))
    return out


def _selfchecks(session: Session, unit_id: int, start: datetime, after: datetime,
                area_names: dict[str, str], first: date) -> list[Candidate]:
    runs = session.execute(select(SelfCheckRun.area, func.count(SelfCheckRun.id))
                           .where(SelfCheckRun.unit_id == unit_id,
                                  SelfCheckRun.status == RunStatus.FINISHED,
                                  SelfCheckRun.finished_at >= start,
                                  SelfCheckRun.finished_at < after)
                           .group_by(SelfCheckRun.area).order_by(SelfCheckRun.area)).all()
    if not runs:
        return []
    answers = session.execute(
        select(SelfCheckRun.area, func.count(SelfCheckAnswer.id),
               func.count(SelfCheckAnswer.hazard_id))
        .join(SelfCheckRun, SelfCheckRun.id == SelfCheckAnswer.run_id)
        .where(SelfCheckRun.unit_id == unit_id, SelfCheckRun.status == RunStatus.FINISHED,
               SelfCheckRun.finished_at >= start, SelfCheckRun.finished_at < after,
               SelfCheckAnswer.answer == Answer.NO)
        .group_by(SelfCheckRun.area)).all()
    problems = {area: (no, filed) for area, no, filed in answers}
    return [Candidate(ItemKind.WORK_INFO, f"selfcheck:{area}", "monthly/candidate_selfcheck.txt.j2",
                      {"month": first.month, "area": area_names.get(area, area), "runs": n,
                       "problems": problems.get(area, (0, 0))[0],
                       "filed": problems.get(area, (0, 0))[1]})
            for area, n in runs]


def _deliverables(session: Session, unit_id: int, start: datetime, after: datetime,
                  tz: ZoneInfo) -> list[Candidate]:
    rows = session.execute(select(cp.Submission, cp.Deliverable.name, cp.Campaign.name)
                           .join(cp.Deliverable, cp.Deliverable.id == cp.Submission.deliverable_id)
                           .join(cp.Campaign, cp.Campaign.id == cp.Deliverable.campaign_id)
                           .where(cp.Submission.unit_id == unit_id,
                                  cp.Submission.submitted_at >= start,
                                  cp.Submission.submitted_at < after)
                           .order_by(cp.Submission.submitted_at, cp.Submission.id)).all()
    return [Candidate(ItemKind.WORK_INFO, f"deliverable:{s.id}",
                      "monthly/candidate_deliverable.txt.j2",
                      {"day": _day(s.submitted_at, tz), "item": item, "campaign": campaign,
                       "note": s.text}, list(s.photo_ids))
            for s, item, campaign in rows]


def _cases(session: Session, unit_id: int, start: datetime, after: datetime,
           tz: ZoneInfo) -> list[Candidate]:
    hazards = session.execute(select(Hazard).where(
        Hazard.unit_id == unit_id, Hazard.closed_at >= start, Hazard.closed_at < after)
        .order_by((Hazard.level == Level.MAJOR).desc(), Hazard.closed_at, Hazard.id)
        .limit(MAX_CASES)).scalars().all()
    if not hazards:
        return []
    photos: dict[int, list[int]] = {}
    for hazard_id, photo_id in session.execute(
            select(HazardPhoto.hazard_id, HazardPhoto.photo_id)
            .where(HazardPhoto.hazard_id.in_([h.id for h in hazards]))
            .order_by(HazardPhoto.stage.desc(), HazardPhoto.id)):  # report, then rectified
        photos.setdefault(hazard_id, []).append(photo_id)
    return [Candidate(ItemKind.CASE, f"hazard:{h.id}", "monthly/candidate_case.txt.j2",
                      {"number": h.number, "description": h.description,
                       "location": h.location, "level_name": LEVEL_NAMES.get(h.level, h.level),
                       "measures": h.measures, "responsible": h.responsible,
                       "reported": _day(h.reported_at, tz), "closed": _day(h.closed_at, tz)},
                      photos.get(h.id, []))
            for h in hazards]
