"""Overdue rectifications (整改逾期), daily.

The responsible person (or the unit's liaisons) gets the hazard in their morning digest every
day it is overdue, and a heads-up in the days before its deadline. A general hazard overdue
``overdue_principal_days`` working days goes to the principal, ``overdue_township_days`` to the
township central school and the bureau; a major hazard goes to all of them at once.
Working days follow the Chinese calendar, 调休 included.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import select

from handlers.hazard_common import LEVEL_NAMES, supervisors
from models.hazard import Hazard, Level, Status
from models.org import Role, Unit, unit_chain, userids_with_roles
from reminders.sweep import SweepCtx


def sweep(ctx: SweepCtx) -> int:
    today, s = ctx.today, ctx.settings
    rows = ctx.session.exec(
        select(Hazard, Unit.name).join(Unit, Unit.id == Hazard.unit_id)
        .where(Hazard.status == Status.PLANNED,
               Hazard.deadline <= today + timedelta(days=s.due_soon_days))).all()
    pushes: list[_Push] = []
    spans: dict[date, int] = {}  # deadline -> working days overdue
    for hazard, unit_name in rows:
        data = {"number": hazard.number, "unit": unit_name, "description": hazard.description,
                "location": hazard.location, "deadline": hazard.deadline,
                "level_name": LEVEL_NAMES[hazard.level], "responsible": hazard.responsible}
        owners = ([hazard.responsible_userid] if hazard.responsible_userid else
                  userids_with_roles(session=ctx.session, unit_id=hazard.unit_id,
                                     roles={Role.LIAISON}))
        if hazard.deadline >= today:
            if ctx.daytime:
                pushes.append(_Push("routine", f"due-soon:{hazard.id}:{today}", owners,
                                    "reminders/due_soon_item.txt.j2",
                                    {"today": today, "subject": hazard.number,
                                     "days_left": (hazard.deadline - today).days, **data}))
            continue
        if hazard.deadline not in spans:  # many share a deadline; a long one is slow to count
            spans[hazard.deadline] = ctx.calendar.workdays_between(hazard.deadline, today)
        over = spans[hazard.deadline]
        data["days_over"], data["calendar_days"] = over, (today - hazard.deadline).days
        if ctx.daytime:
            pushes.append(_Push("routine", f"overdue:{hazard.id}:{today}", owners,
                                "reminders/overdue_item.txt.j2",
                                {"today": today, "subject": hazard.number, **data}))
        pushes += _escalate(ctx, hazard, over, data)
    # Most of these went out on an earlier pass (today's digest items, a deadline's
    # escalations): find those in a few queries and neither render nor insert them again.
    taken = ctx.pusher.taken(
        session=ctx.session,
        digest=[f"{p.key}:{u}" for p in pushes if p.how == "routine" for u in p.to],
        outbox_=[f"{p.key}:{u}" for p in pushes if p.how != "routine" for u in p.to])
    queued = 0
    for push in pushes:
        to = [u for u in push.to if f"{push.key}:{u}" not in taken]
        if to:
            queued += getattr(ctx.pusher, push.how)(
                session=ctx.session, key=push.key, to=to, template=push.template, now=ctx.now,
                **push.data)
    return queued


@dataclass(frozen=True)
class _Push:
    how: str  # the Pusher's method: routine | timely | alert
    key: str
    to: list[str]
    template: str
    data: dict


def _escalate(ctx: SweepCtx, hazard: Hazard, over: int, data: dict) -> list[_Push]:
    """One push per level and deadline: an extension starts the ladder again."""
    units = unit_chain(session=ctx.session, unit_id=hazard.unit_id)
    key = f"{hazard.id}:{hazard.deadline.isoformat()}"
    template = "reminders/overdue_escalation.txt.j2"
    if hazard.level == Level.MAJOR:
        return [_Push("alert", f"overdue-major:{key}",
                      supervisors(ctx.session, units, include_own=True), template,
                      {"who": "major", **data})]
    pushes = []
    if over >= ctx.settings.overdue_principal_days:
        pushes.append(_Push("timely", f"overdue-principal:{key}",
                            userids_with_roles(session=ctx.session, unit_id=hazard.unit_id,
                                               roles={Role.LEADER}),
                            template, {"who": "principal", **data}))
    if over >= ctx.settings.overdue_township_days:
        pushes.append(_Push("timely", f"overdue-township:{key}",
                            supervisors(ctx.session, units, include_own=False), template,
                            {"who": "township", **data}))
    return pushes
