"""The roster and escalation-chain check: what would fail when an escalation needs it.

Per unit: no principal (组长) or no liaison who can be reached; for units that keep duty, the
coming week's weekends and holidays with no shift, holiday shifts with no leader on duty,
shifts that put someone on leave, people on duty who are not bound to WeCom; and anyone of the
unit whose last push failed as unreachable (outbox: 'recipient unreachable' or errcode 81013)
since the last one that got through. Run nightly by reminders/duty_check.py and by hand with
``safebot check``; both render the same findings.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, select

from bot.workcal import WorkCalendar
from models import duty
from models.base import as_utc
from models.org import Person, Role, Unit, UnitKind, userids_with_roles
from models.outbox import FAILED, SENT, OutboxMessage

DUTY_UNITS = frozenset({UnitKind.TOWNSHIP, UnitKind.SCHOOL, UnitKind.KINDERGARTEN})
AHEAD_DAYS = 7


def findings(*, session: Session, today: date, calendar: WorkCalendar,
             unit_ids: list[int] | None = None) -> list[dict]:
    """``[{"unit": name, "code": code, "unit_id": id, "issues": [{"kind": …, …}]}]`` for every
    unit (or those of ``unit_ids``), in code order; units with no issue have an empty list."""
    query = select(Unit).order_by(Unit.code)
    if unit_ids is not None:
        query = query.where(Unit.id.in_(unit_ids))
    units = session.exec(query).all()
    unreachable = _unreachable(session)
    first, last = today + timedelta(days=1), today + timedelta(days=AHEAD_DAYS)
    result = []
    for unit in units:
        issues: list[dict] = []
        for role, kind in ((Role.LEADER, "no_principal"), (Role.LIAISON, "no_liaison")):
            if not userids_with_roles(session=session, unit_id=unit.id, roles={role}):
                issues.append({"kind": kind})
        if unit.kind in DUTY_UNITS:
            issues += _roster_issues(session, unit.id, first, last, calendar)
        people = session.exec(select(Person).where(Person.unit_id == unit.id,
                                                   Person.userid.in_(list(unreachable)))
                              .order_by(Person.name)).all() if unreachable else []
        for person in people:
            issues.append({"kind": "unreachable", "name": person.name, "userid": person.userid,
                           "error": unreachable[person.userid]})
        result.append({"unit": unit.name, "code": unit.code, "unit_id": unit.id,
                       "issues": issues})
    return result


def _roster_issues(session: Session, unit_id: int, first: date, last: date,
                   calendar: WorkCalendar) -> list[dict]:
    shifts = duty.shifts_of(session=session, unit_ids=[unit_id], first=first, last=last)
    issues: list[dict] = []
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    empty = [d for d in days if not calendar.is_workday(d) and not any(s.day == d for s in shifts)]
    if empty:
        issues.append({"kind": "empty_days", "days": empty})
    for shift in shifts:
        if calendar.is_holiday(shift.day) and shift.leader_id is None:
            issues.append({"kind": "no_leader", "day": shift.day, "shift": shift.kind})
    away = duty.leave_conflicts(session=session, shifts=shifts)
    by_id = {s.id: s for s in shifts}
    for shift_id, people in away.items():
        for person_id in people:
            issues.append({"kind": "on_leave", "day": by_id[shift_id].day,
                           "shift": by_id[shift_id].kind,
                           "name": session.get(Person, person_id).name})
    unbound = sorted({p.name for s in shifts for p in (session.get(Person, s.person_id),
                                                       session.get(Person, s.leader_id)
                                                       if s.leader_id else None)
                      if p is not None and not p.userid})
    for name in unbound:
        issues.append({"kind": "unbound", "name": name})
    return issues


def _unreachable(session: Session) -> dict[str, str]:
    """userid -> the error of their last failed push, for those with no push delivered since."""
    unreachable = (OutboxMessage.channel == "app", OutboxMessage.status == FAILED,
                   or_(OutboxMessage.last_error.like("recipient unreachable%"),
                       OutboxMessage.last_error.like("%81013%")))
    failed = session.exec(
        select(OutboxMessage.recipient, func.max(OutboxMessage.dispatched_at))
        .where(*unreachable).group_by(OutboxMessage.recipient)).all()
    if not failed:
        return {}
    recipients = [r for r, _ in failed]
    delivered = dict(session.exec(
        select(OutboxMessage.recipient, func.max(OutboxMessage.dispatched_at))
        .where(OutboxMessage.channel == "app", OutboxMessage.status == SENT,
               OutboxMessage.recipient.in_(recipients))
        .group_by(OutboxMessage.recipient)).all())
    result = {}
    for recipient, failed_at in failed:
        ok_at = delivered.get(recipient)
        if ok_at is None or failed_at is None or as_utc(ok_at) < as_utc(failed_at):
            error = session.exec(select(OutboxMessage.last_error).where(
                *unreachable, OutboxMessage.recipient == recipient)
                .order_by(OutboxMessage.id.desc())).first()
            result[recipient] = _short(error or "")
    return result


def _short(error: str) -> str:
    if error.startswith("recipient unreachable"):
        return error.partition(":")[2].strip() or error
    return "errcode 81013" if "81013" in error else error[:60]
