"""Presence spot checks (查岗): the bureau asks the person on duty to confirm within 5 minutes.

Every spot check is a row (who was asked, by whom, when, when they answered, how far it
escalated), whether a leader typed ``查岗 <单位>`` or the bureau's random schedule
(``SpotPlan``: so many checks a day across the units below it) picked the moment.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Field, Session, SQLModel, select

from models.base import insert_ignore, utc_field

ANSWER_WITHIN = timedelta(minutes=5)
OPEN_FOR = timedelta(hours=12)  # 在岗 answers a spot check asked this recently


class SpotCheck(SQLModel, table=True):
    __tablename__ = "duty_spot_check"
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    shift_id: int | None = Field(default=None, foreign_key="duty_shift.id")
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    asked_by: int | None = Field(default=None, foreign_key="person.id")  # None: the schedule
    plan_key: str | None = Field(default=None, max_length=64, unique=True)
    asked_at: datetime = utc_field()
    answered_at: datetime | None = utc_field(default=None)
    escalation: int = Field(default=0)  # 1: the leader on duty was told, 2: the bureau


class SpotPlan(SQLModel, table=True):
    """A random schedule: ``per_day`` spot checks a day among the units below ``unit_id``."""

    __tablename__ = "duty_spot_plan"
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", unique=True)
    per_day: int
    set_by: int = Field(foreign_key="person.id")
    set_at: datetime = utc_field()


def ask(*, session: Session, unit_id: int, shift_id: int | None, person_id: int | None,
        asked_by: int | None, now: datetime, plan_key: str | None = None) -> SpotCheck | None:
    """Log a spot check; None if the schedule's ``plan_key`` was already used."""
    values = {"unit_id": unit_id, "shift_id": shift_id, "person_id": person_id,
              "asked_by": asked_by, "plan_key": plan_key, "asked_at": now, "escalation": 0}
    if plan_key is not None:
        if not insert_ignore(session, SpotCheck.__table__, values):
            return None
        return session.exec(select(SpotCheck).where(SpotCheck.plan_key == plan_key)).one()
    spot = SpotCheck(**values)
    session.add(spot)
    session.flush()
    return spot


def waiting_for(*, session: Session, person_id: int, now: datetime) -> SpotCheck | None:
    """The person's latest unanswered spot check."""
    return session.exec(select(SpotCheck).where(SpotCheck.person_id == person_id,
                                                SpotCheck.answered_at.is_(None),
                                                SpotCheck.asked_at > now - OPEN_FOR)
                        .order_by(SpotCheck.asked_at.desc())).first()


def unanswered(*, session: Session, now: datetime) -> list[SpotCheck]:
    """Spot checks past their 5 minutes with nobody answering, newest last."""
    return list(session.exec(select(SpotCheck).where(
        SpotCheck.answered_at.is_(None), SpotCheck.person_id.is_not(None),
        SpotCheck.asked_at <= now - ANSWER_WITHIN, SpotCheck.asked_at > now - OPEN_FOR,
        SpotCheck.escalation < 2).order_by(SpotCheck.asked_at)).all())


def recent(*, session: Session, unit_ids: list[int], limit: int = 20) -> list[SpotCheck]:
    return list(session.exec(select(SpotCheck).where(SpotCheck.unit_id.in_(unit_ids))
                             .order_by(SpotCheck.asked_at.desc(), SpotCheck.id.desc())
                             .limit(limit)).all())


def set_plan(*, session: Session, unit_id: int, per_day: int, set_by: int,
             now: datetime) -> None:
    plan = session.exec(select(SpotPlan).where(SpotPlan.unit_id == unit_id)).first()
    if plan is None:
        session.add(SpotPlan(unit_id=unit_id, per_day=per_day, set_by=set_by, set_at=now))
    else:
        plan.per_day, plan.set_by, plan.set_at = per_day, set_by, now
    session.flush()


def plans(*, session: Session) -> list[SpotPlan]:
    return list(session.exec(select(SpotPlan).where(SpotPlan.per_day > 0)).all())
