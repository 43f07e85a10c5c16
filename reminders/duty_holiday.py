"""Holiday duty coverage (seed 001 三(五): 节假日 24小时专人值班、领导带班).

For each statutory holiday in the next 14 days, a unit that keeps duty and whose holiday days
lack 24-hour duty with a leader is warned once (its admins, liaisons and principal), and the
day before the holiday — the bureau's collection deadline — the bureau's safety officers get
the list of units still missing. Daytime only: a warning held overnight may be stale.
"""
from __future__ import annotations

from datetime import date, time, timedelta

from sqlmodel import select

from bot.duty_check import DUTY_UNITS
from bot.workcal import WorkCalendar
from models import duty
from models.duty_facts import roster_keepers
from models.org import Role, Unit, UnitKind, unit_and_descendants, userids_with_roles
from reminders.sweep import SweepCtx

AHEAD_DAYS = 14
LIST_FROM = time(9, 0)  # the bureau's list goes out from 09:00 the day before


def periods(calendar: WorkCalendar, today: date) -> list[tuple[str, date, list[date]]]:
    """Holiday periods (runs of consecutive days off, so 国庆节 with 中秋节 inside is one)
    beginning in the next ``AHEAD_DAYS`` or under way: (names, first day, its days)."""
    runs: list[tuple[list[str], list[date]]] = []
    for day, name in calendar.holidays_in(today - timedelta(days=31),
                                          today + timedelta(days=AHEAD_DAYS + 31)):
        if runs and runs[-1][1][-1] == day - timedelta(days=1):
            runs[-1][1].append(day)
            if name not in runs[-1][0]:
                runs[-1][0].append(name)
        else:
            runs.append(([name], [day]))
    return [("、".join(names), days[0], days) for names, days in runs
            if days[-1] >= today and days[0] <= today + timedelta(days=AHEAD_DAYS)]


def uncovered(session, unit_id: int, days: list[date]) -> list[date]:
    shifts = duty.shifts_of(session=session, unit_ids=[unit_id], first=days[0], last=days[-1])
    return [d for d in days if not duty.covered([s for s in shifts if s.day == d])]


def sweep(ctx: SweepCtx) -> int:
    if not ctx.daytime:
        return 0
    todo = periods(ctx.calendar, ctx.today)
    if not todo:
        return 0
    units = ctx.session.exec(select(Unit).where(Unit.kind.in_(DUTY_UNITS))
                             .order_by(Unit.code)).all()
    queued = 0
    for name, first, days in todo:
        days = [d for d in days if d >= ctx.today]
        missing: dict[int, list[date]] = {}
        for unit in units:
            gaps = uncovered(ctx.session, unit.id, days)
            if not gaps:
                continue
            missing[unit.id] = gaps
            queued += ctx.pusher.timely(
                session=ctx.session, key=f"duty-holiday:{unit.id}:{first.isoformat()}",
                to=roster_keepers(ctx.session, unit.id), template="duty/holiday_uncovered.txt.j2",
                now=ctx.now, holiday=name, first=first, last=days[-1], unit=unit.name,
                gaps=gaps, deadline=max(ctx.today, first - timedelta(days=1)))
        if ctx.today == first - timedelta(days=1) and ctx.local_now.time() >= LIST_FROM:
            queued += _bureau_list(ctx, name, first, days, missing)
    return queued


def _bureau_list(ctx: SweepCtx, name: str, first: date, days: list[date],
                 missing: dict[int, list[date]]) -> int:
    queued = 0
    for bureau in ctx.session.exec(select(Unit).where(Unit.kind == UnitKind.BUREAU)).all():
        below = [u for u in unit_and_descendants(session=ctx.session, unit_id=bureau.id)
                 if u.kind in DUTY_UNITS]
        rows = [{"unit": u.name, "gaps": missing[u.id]} for u in below if u.id in missing]
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"duty-holiday-list:{bureau.id}:{first.isoformat()}",
            to=userids_with_roles(session=ctx.session, unit_id=bureau.id,
                                  roles={Role.SAFETY_OFFICER}),
            template="duty/holiday_list.txt.j2", now=ctx.now, holiday=name, first=first,
            last=days[-1], total=len(below), missing=rows)
    return queued
