"""值班 and 值班表: today's duty (with check-in rates for leaders), the next 7 days of the roster,
and setting one slot by message (`值班表 12月1日 24小时 孙值班 李校长`).

A slot set again replaces who is on it; the people whose slot changed are told by the duty sweep.
On a statutory holiday the reply warns unless the slot is 24-hour duty with a leader (seed 001).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, select

from bot.context import Ctx
from bot.dates import DateParseError, parse_date
from bot.messages import Incoming, Reply
from bot.router import Router
from bot.workcal import WorkCalendar
from models import duty
from models.base import as_utc
from models.duty_facts import PersonNotFound, facts, find_person
from models.org import LEADERS, Identity, Person, Role, Unit, unit_and_descendants, unit_chain

router = Router("duty")
ROSTER_KEEPERS = frozenset({Role.LEADER, Role.DEPUTY, Role.LIAISON, Role.ADMIN})
TIME_RANGE = re.compile(r"(\d{1,2}):(\d{2})[-~](\d{1,2}):(\d{2})")
LEADER_MARKS = ("带班领导", "带班", "领导")
RATE_DAYS = 30


@router.command("值班表", hidden=True)  # 值班's help line names it
async def roster(msg: Incoming, ctx: Ctx) -> Reply:
    """值班表 [日期 班次 值班人员 带班领导] —— 查看 7 天值班表；负责人排班"""
    words = ctx.args.split()
    calendar: WorkCalendar = ctx.services["calendar"]
    today = ctx.local_now.date()
    try:
        first = parse_date(words[0], today=today, calendar=calendar) if words else today
    except DateParseError as exc:
        return Reply.of("duty/roster_usage.txt.j2", error=exc.reason, text=exc.text)
    if len(words) <= 1:
        data = await ctx.db.run(_week, unit_id=ctx.unit_id, first=first, calendar=calendar)
        return Reply.of("duty/roster.txt.j2", **data)
    if not ctx.identity.has_any(ROSTER_KEEPERS):
        return Reply.of("common/forbidden.txt.j2", command="值班表（排班）")
    slot = _parse_slot(words[1:])
    if slot is None:
        return Reply.of("duty/roster_usage.txt.j2", error="", text="")
    kind, times, person, leader = slot
    result = await ctx.db.run(_set, unit_id=ctx.unit_id, day=first, kind=kind, times=times,
                              person=person, leader=leader, now=ctx.now, tz=ctx.tz,
                              calendar=calendar)
    return Reply.of("duty/slot_set.txt.j2", **result)


def _parse_slot(words: list[str]) -> tuple[str, tuple[time, time] | None, str, str] | None:
    """班次 [08:00-18:00] 值班人员 [带班] [带班领导]."""
    kind = duty.KIND_NAMES.get(words[0])
    rest = [w for w in words[1:] if w not in LEADER_MARKS]
    times = None
    if rest and (m := TIME_RANGE.fullmatch(rest[0])):
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if max(h1, h2) > 23 or max(m1, m2) > 59:
            return None
        times, rest = (time(h1, m1), time(h2, m2)), rest[1:]
    if kind is None or not 1 <= len(rest) <= 2:
        return None
    return kind, times, rest[0], rest[1] if len(rest) == 2 else ""


def _set(*, session: Session, unit_id: int, day: date, kind: str,
         times: tuple[time, time] | None, person: str, leader: str, now: datetime, tz,
         calendar: WorkCalendar) -> dict:
    chain = [u.id for u in unit_chain(session=session, unit_id=unit_id)]
    try:
        on_duty = find_person(session, [unit_id], person)
        leading = find_person(session, chain, leader) if leader else None
    except PersonNotFound as exc:
        return {"error": "person", "text": exc.text, "candidates": exc.candidates}
    start, end = times or (None, None)
    start_at, end_at = duty.slot_times(day, kind, tz, start, end)
    shift, changes = duty.set_slot(session=session, unit_id=unit_id, day=day, kind=kind,
                                   start_at=start_at, end_at=end_at, person_id=on_duty.id,
                                   leader_id=leading.id if leading else None, now=now)
    away = duty.leave_conflicts(session=session, shifts=[shift]).get(shift.id, [])
    holiday = calendar.holiday_name(day)
    return {"error": "", **facts(session, shift), "changed": len(changes),
            "on_leave": [session.get(Person, p).name for p in away],
            "unbound": [p.name for p in (on_duty, leading) if p and not p.userid],
            "holiday": holiday or "",
            "holiday_short": bool(holiday) and (kind != duty.Kind.FULL or leading is None)}


def _week(*, session: Session, unit_id: int, first: date, calendar: WorkCalendar) -> dict:
    last = first + timedelta(days=6)
    shifts = duty.shifts_of(session=session, unit_ids=[unit_id], first=first, last=last)
    away = duty.leave_conflicts(session=session, shifts=shifts)
    days = []
    for i in range(7):
        day = first + timedelta(days=i)
        mine = [s for s in shifts if s.day == day]
        rows = [{**facts(session, s), "on_leave": [session.get(Person, p).name
                                                   for p in away.get(s.id, [])]} for s in mine]
        days.append({"day": day, "holiday": calendar.holiday_name(day) or "",
                     "workday": calendar.is_workday(day), "shifts": rows,
                     "uncovered": calendar.is_holiday(day) and not duty.covered(mine)})
    return {"unit": session.get(Unit, unit_id).name, "days": days}


@router.command("值班")
async def today(msg: Incoming, ctx: Ctx) -> Reply:
    """值班 —— 今日值班；值班表 看 7 天、排班（如 值班表 12月1日 24小时 孙值班 李校长）"""
    data = await ctx.db.run(_today, unit_id=ctx.unit_id, who=ctx.identity, now=ctx.now,
                            today=ctx.local_now.date())
    return Reply.of("duty/today.txt.j2", **data)


def _today(*, session: Session, unit_id: int, who: Identity, now: datetime,
           today: date) -> dict:
    shifts = [s for s in duty.shifts_of(session=session, unit_ids=[unit_id],
                                        first=today - timedelta(days=1), last=today)
              if s.day == today or as_utc(s.end_at) > now]
    data = {"unit": session.get(Unit, unit_id).name, "today": today, "now": now,
            "shifts": [facts(session, s) for s in shifts], "rates": [], "rate_days": RATE_DAYS}
    if who.has_any(LEADERS):
        data["rates"] = rates(session, unit_id, now)
    return data


def rates(session: Session, unit_id: int, now: datetime) -> list[dict]:
    """Check-in rates of the past days for the unit and each unit below it that had shifts:
    shifts begun, checked in, on time (checked in before any escalation)."""
    units = unit_and_descendants(session=session, unit_id=unit_id)
    rows = session.exec(select(duty.Shift).where(
        duty.Shift.unit_id.in_([u.id for u in units]), duty.Shift.start_at <= now,
        duty.Shift.start_at > now - timedelta(days=RATE_DAYS))).all()
    result = []
    for unit in units:
        mine = [s for s in rows if s.unit_id == unit.id]
        if not mine:
            continue
        checked = [s for s in mine if s.checked_in_at is not None]
        on_time = [s for s in checked if s.escalation == 0]
        result.append({"unit": unit.name, "total": len(mine), "checked": len(checked),
                       "on_time": len(on_time),
                       "percent": round(100 * len(checked) / len(mine))})
    return result
