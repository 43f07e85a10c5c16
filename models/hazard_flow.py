"""The hazard's status moves. Each checks that the move is legal from the current status,
applies it and appends the event; an illegal move changes nothing and says why.

Permissions (who) are checked by the caller with ``models.hazard_access``; these functions
guard the *what*: closing an open hazard, reviewing one's own rectification, a deadline in
the past and so on.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Session

from models.hazard import (Hazard, Level, Status, attach_photos, next_number, record_event)
from models.org import Identity

PLAN_FIELDS = ("department", "responsible", "measures", "funds", "deadline", "contingency")


class Refusal(StrEnum):
    WRONG_STATUS = "wrong_status"
    OWN_RECTIFICATION = "own_rectification"
    NO_PLAN = "no_plan"
    PAST_DEADLINE = "past_deadline"
    NOT_LATER = "not_later"              # an extension must move the deadline later
    NO_EXTENSION = "no_extension"        # nothing to approve or reject
    NEEDS_APPROVAL = "needs_approval"    # recorded as a request, waiting for the level above


@dataclass(frozen=True)
class Plan:
    department: str
    responsible: str
    measures: str
    funds: str
    deadline: date
    contingency: str
    responsible_userid: str | None = None


def create(*, session: Session, unit_id: int, reporter: Identity, description: str,
           location: str, area: str, level: Level, now: datetime, year: int,
           photo_ids: list[int], source: str = "self") -> Hazard:
    hazard = Hazard(number=next_number(session=session, year=year), unit_id=unit_id,
                    area=area, description=description, location=location, level=level,
                    status=Status.REPORTED, source=source, reporter_id=reporter.person_id,
                    reported_at=now)
    session.add(hazard)
    session.flush()
    attach_photos(session=session, hazard_id=hazard.id, photo_ids=photo_ids, stage="report")
    _event(session, hazard, reporter, now, "reported", level=level, source=source,
           photos=len(photo_ids))
    return hazard


def set_plan(*, session: Session, hazard: Hazard, actor: Identity, plan: Plan, now: datetime,
             today: date) -> Refusal | None:
    if hazard.status not in (Status.REPORTED, Status.PLANNED):
        return Refusal.WRONG_STATUS
    if plan.deadline < today:
        return Refusal.PAST_DEADLINE
    action = "planned" if hazard.status == Status.REPORTED else "replanned"
    for name in PLAN_FIELDS:
        setattr(hazard, name, getattr(plan, name))
    hazard.responsible_userid = plan.responsible_userid
    hazard.status = Status.PLANNED
    _event(session, hazard, actor, now, action, deadline=plan.deadline.isoformat(),
           responsible=plan.responsible, department=plan.department)
    return None


def mark_rectified(*, session: Session, hazard: Hazard, actor: Identity, now: datetime,
                   photo_ids: list[int]) -> Refusal | None:
    if hazard.status == Status.REPORTED:
        return Refusal.NO_PLAN
    if hazard.status != Status.PLANNED:
        return Refusal.WRONG_STATUS
    hazard.status, hazard.rectified_by, hazard.rectified_at = Status.RECTIFIED, actor.person_id, now
    attach_photos(session=session, hazard_id=hazard.id, photo_ids=photo_ids, stage="rectified")
    _event(session, hazard, actor, now, "rectified", photos=len(photo_ids))
    return None


def review(*, session: Session, hazard: Hazard, actor: Identity, passed: bool, reason: str,
           now: datetime) -> Refusal | None:
    if hazard.status != Status.RECTIFIED:
        return Refusal.WRONG_STATUS
    if hazard.rectified_by == actor.person_id:
        return Refusal.OWN_RECTIFICATION
    if passed:
        hazard.status, hazard.closed_at = Status.CLOSED, now
        hazard.review_result = "通过"
    else:
        hazard.status, hazard.rectified_at, hazard.rectified_by = Status.PLANNED, None, None
        hazard.review_result = f"不通过：{reason}"
    _event(session, hazard, actor, now, "review_passed" if passed else "review_failed",
           reason=reason)
    return None


def request_extension(*, session: Session, hazard: Hazard, actor: Identity, deadline: date,
                      reason: str, now: datetime, today: date,
                      approve_at_once: bool) -> Refusal | None:
    """A 延期 request; ``approve_at_once`` when the requester may decide it themselves."""
    if hazard.status != Status.PLANNED or hazard.deadline is None:
        return Refusal.WRONG_STATUS
    if deadline < today:
        return Refusal.PAST_DEADLINE
    if deadline <= hazard.deadline:
        return Refusal.NOT_LATER
    hazard.extension_deadline, hazard.extension_reason = deadline, reason
    hazard.extension_by = actor.person_id
    _event(session, hazard, actor, now, "extension_requested", deadline=deadline.isoformat(),
           reason=reason)
    if approve_at_once and hazard.level == Level.GENERAL:
        return decide_extension(session=session, hazard=hazard, actor=actor, approve=True,
                                reason="", now=now)
    return Refusal.NEEDS_APPROVAL


def decide_extension(*, session: Session, hazard: Hazard, actor: Identity, approve: bool,
                     reason: str, now: datetime) -> Refusal | None:
    if hazard.extension_deadline is None or hazard.status != Status.PLANNED:
        return Refusal.NO_EXTENSION
    old = hazard.deadline
    if approve:
        hazard.deadline = hazard.extension_deadline
    _event(session, hazard, actor, now,
           "extension_approved" if approve else "extension_rejected",
           deadline=hazard.extension_deadline.isoformat(),
           previous=old.isoformat() if old else "", reason=reason)
    hazard.extension_deadline, hazard.extension_reason, hazard.extension_by = None, "", None
    return None


def reopen(*, session: Session, hazard: Hazard, actor: Identity, reason: str,
           now: datetime) -> Refusal | None:
    if hazard.status != Status.CLOSED:
        return Refusal.WRONG_STATUS
    hazard.status = Status.PLANNED if hazard.deadline else Status.REPORTED
    hazard.closed_at, hazard.rectified_at, hazard.rectified_by = None, None, None
    hazard.review_result = ""
    _event(session, hazard, actor, now, "reopened", reason=reason)
    return None


def _event(session: Session, hazard: Hazard, actor: Identity, now: datetime, action: str,
           **detail: object) -> None:
    record_event(session=session, hazard_id=hazard.id, at=now, actor_id=actor.person_id,
                 actor_name=actor.name, action=action, **detail)
