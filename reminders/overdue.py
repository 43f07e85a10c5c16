"""Overdue rectifications (整改逾期), daily.

The responsible person (or the unit's liaisons) gets the hazard in their morning digest every
day it is overdue, and a heads-up in the days before its deadline. A general hazard overdue
``overdue_principal_days`` working days goes to the principal, ``overdue_township_days`` to the
township central school and the bureau; a major hazard goes to all of them at once.
Working days follow the Chinese calendar, 调休 included. Someone with ``ESCALATIONS.at`` or more
escalations in one pass (the bureau, the first morning after deployment) gets them as one
list (reminders.pusher.Grouping).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Iterable

from sqlmodel import select

from bot.workcal import WorkCalendar
from handlers.hazard_common import LEVEL_NAMES, supervisors
from models.hazard import Hazard, Level, Status
from models.org import Role, Unit, unit_chain, userids_with_roles
from reminders.pusher import Grouping, Push
from reminders.sweep import SweepCtx

ESCALATIONS = Grouping("overdue-escalations", "reminders/overdue_escalations.txt.j2",
                       "reminders/overdue_escalation_line.txt.j2")


def sweep(ctx: SweepCtx) -> int:
    today, s = ctx.today, ctx.settings
    # columns, not ORM objects: thousands of hazards are planned at any time in a district
    rows = ctx.session.execute(
        select(Hazard.id, Hazard.number, Hazard.unit_id, Hazard.level, Hazard.description,
               Hazard.location, Hazard.deadline, Hazard.responsible, Hazard.responsible_userid,
               Unit.name.label("unit_name"))
        .join(Unit, Unit.id == Hazard.unit_id)
        .where(Hazard.status == Status.PLANNED,
               Hazard.deadline <= today + timedelta(days=s.due_soon_days))).all()
    people = _People(ctx)
    spans = workdays_over(ctx.calendar, (r.deadline for r in rows if r.deadline < today), today)
    pushes: list[Push] = []
    for hazard in rows:
        data = {"number": hazard.number, "unit": hazard.unit_name,
                "description": hazard.description, "location": hazard.location,
                "deadline": hazard.deadline, "level_name": LEVEL_NAMES[hazard.level],
                "responsible": hazard.responsible}
        owners = ([hazard.responsible_userid] if hazard.responsible_userid else
                  people.of(hazard.unit_id, Role.LIAISON))
        if hazard.deadline >= today:
            if ctx.daytime:
                pushes.append(Push("routine", f"due-soon:{hazard.id}:{today}", owners,
                                   "reminders/due_soon_item.txt.j2",
                                   {"days_left": (hazard.deadline - today).days, **data},
                                   subject=hazard.number))
            continue
        over = spans[hazard.deadline]
        data["days_over"], data["calendar_days"] = over, (today - hazard.deadline).days
        if ctx.daytime:
            pushes.append(Push("routine", f"overdue:{hazard.id}:{today}", owners,
                               "reminders/overdue_item.txt.j2", dict(data),
                               subject=hazard.number))
        pushes += _escalate(ctx, people, hazard, over, data)
    # Most of these went out on an earlier pass (today's digest items, a deadline's
    # escalations): find those in a few queries and neither render nor insert them again.
    taken = ctx.pusher.taken(
        session=ctx.session,
        digest=[f"{p.key}:{u}" for p in pushes if p.how == "routine" for u in p.to],
        outbox_=[f"{p.key}:{u}" for p in pushes if p.how != "routine" for u in p.to])
    fresh = [replace(p, to=to) for p in pushes
             if (to := [u for u in p.to if f"{p.key}:{u}" not in taken])]
    return ctx.pusher.push_all(session=ctx.session, pushes=fresh, now=ctx.now, today=today)


def workdays_over(calendar: WorkCalendar, deadlines: Iterable[date],
                  today: date) -> dict[date, int]:
    """Deadline (before today) → working days from it (excluded) to today: one walk back
    through the calendar for all of them, not one per deadline (three years of them)."""
    out: dict[date, int] = {}
    count, day = 0, today
    for deadline in sorted(set(deadlines), reverse=True):
        count += calendar.workdays_between(deadline, day)
        out[deadline], day = count, deadline
    return out


class _People:
    """Who hears of a unit's hazards, looked up once per unit (not once per hazard)."""

    def __init__(self, ctx: SweepCtx) -> None:
        self.ctx = ctx
        self.seen: dict[tuple, list[str]] = {}

    def of(self, unit_id: int, role: str) -> list[str]:
        if (unit_id, role) not in self.seen:
            self.seen[(unit_id, role)] = userids_with_roles(
                session=self.ctx.session, unit_id=unit_id, roles={role})
        return self.seen[(unit_id, role)]

    def supervisors(self, unit_id: int, include_own: bool) -> list[str]:
        if (unit_id, include_own) not in self.seen:
            units = unit_chain(session=self.ctx.session, unit_id=unit_id)
            self.seen[(unit_id, include_own)] = supervisors(self.ctx.session, units,
                                                            include_own=include_own)
        return self.seen[(unit_id, include_own)]


def _escalate(ctx: SweepCtx, people: _People, hazard: Any, over: int,
              data: dict) -> list[Push]:
    """One push per level and deadline: an extension starts the ladder again."""
    key = f"{hazard.id}:{hazard.deadline.isoformat()}"
    template = "reminders/overdue_escalation.txt.j2"
    if hazard.level == Level.MAJOR:
        return [Push("alert", f"overdue-major:{key}", people.supervisors(hazard.unit_id, True),
                     template, {"who": "major", **data}, grouping=ESCALATIONS)]
    pushes = []
    if over >= ctx.settings.overdue_principal_days:
        pushes.append(Push("timely", f"overdue-principal:{key}",
                           people.of(hazard.unit_id, Role.LEADER),
                           template, {"who": "principal", **data}, grouping=ESCALATIONS))
    if over >= ctx.settings.overdue_township_days:
        pushes.append(Push("timely", f"overdue-township:{key}",
                           people.supervisors(hazard.unit_id, False), template,
                           {"who": "township", **data}, grouping=ESCALATIONS))
    return pushes
