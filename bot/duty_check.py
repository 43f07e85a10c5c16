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
    # The week's shifts, the leave and the people on them, and who is unreachable: read once
    # for every unit (a district has 2,000: one query each per unit took seconds every pass).
    week: dict[int, list[duty.Shift]] = {}
    for shift in session.exec(select(duty.Shift)
                              .where(duty.Shift.day >= first, duty.Shift.day <= last)
                              .order_by(duty.Shift.start_at, duty.Shift.unit_id,
                                        duty.Shift.id)).all():
        week.setdefault(shift.unit_id, []).append(shift)
    leave = duty.on_leave(session=session, person_ids=None, first=first, last=last)
    people = {pid: (name, userid) for pid, name, userid in session.exec(
        select(Person.id, Person.name, Person.userid)).all()}
    lost: dict[int, list[Person]] = {}
    if unreachable:
        for person in session.exec(select(Person).where(Person.userid.in_(list(unreachable)))
                                   .order_by(Person.name)).all():
            lost.setdefault(person.unit_id, []).append(person)
    result = []
    for unit in units:
        issues: list[dict] = []
        for role, kind in ((Role.LEADER, "no_principal"), (Role.LIAISON, "no_liaison")):
            if not userids_with_roles(session=session, unit_id=unit.id, roles={role}):
                issues.append({"kind": kind})
        if unit.kind in DUTY_UNITS:
            issues += _roster_issues(week.get(unit.id, []), first, last, calendar, leave,
                                     people)
        for person in lost.get(unit.id, []):
            issues.append({"kind": "unreachable", "name": person.name, "userid": person.userid,
                           "error": unreachable[person.userid]})
        result.append({"unit": unit.name, "code": unit.code, "unit_id": unit.id,
                       "issues": issues})
    return result


def _roster_issues(shifts: list[duty.Shift], first: date, last: date, calendar: WorkCalendar,
                   leave: dict[int, list[tuple[date, date]]],
                   people: dict[int, tuple[str, str | None]]) -> list[dict]:
    """A unit's roster problems in ``first`` .. ``last``: ``shifts`` are its shifts then (in
    time order), ``leave`` everyone's leave then, ``people`` id → (name, userid)."""
    issues: list[dict] = []
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    empty = [d for d in days if not calendar.is_workday(d) and not any(s.day == d for s in shifts)]
    if empty:
        issues.append({"kind": "empty_days", "days": empty})
    for shift in shifts:
        if calendar.is_holiday(shift.day) and shift.leader_id is None:
            issues.append({"kind": "no_leader", "day": shift.day, "shift": shift.kind})
    away = duty.leave_conflicts(shifts=shifts, leave=leave)
    by_id = {s.id: s for s in shifts}
    for shift_id, on_leave in away.items():
        for person_id in on_leave:
            issues.append({"kind": "on_leave", "day": by_id[shift_id].day,
                           "shift": by_id[shift_id].kind, "name": people[person_id][0]})
    unbound = sorted({people[p][0] for s in shifts for p in (s.person_id, s.leader_id)
                      if p in people and not people[p][1]})
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
