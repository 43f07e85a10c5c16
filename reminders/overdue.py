"""Overdue rectifications (整改逾期), daily.

The responsible person (or the unit's liaisons) gets the hazard in their morning digest every
day it is overdue, and a heads-up in the days before its deadline. A general hazard overdue
``overdue_principal_days`` working days goes to the principal, ``overdue_township_days`` to the
township central school and the bureau; a major hazard goes to all of them at once.
Working days follow the Chinese calendar, 调休 included.
"""
from __future__ import annotations

from datetime import timedelta

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
    queued = 0
    for hazard, unit_name in rows:
        data = {"number": hazard.number, "unit": unit_name, "description": hazard.description,
                "location": hazard.location, "deadline": hazard.deadline,
                "level_name": LEVEL_NAMES[hazard.level], "responsible": hazard.responsible}
        owners = ([hazard.responsible_userid] if hazard.responsible_userid else
                  userids_with_roles(session=ctx.session, unit_id=hazard.unit_id,
                                     roles={Role.LIAISON}))
        if hazard.deadline >= today:
            if ctx.daytime:
                queued += ctx.pusher.routine(
                    session=ctx.session, key=f"due-soon:{hazard.id}:{today}", to=owners,
                    template="reminders/due_soon_item.txt.j2", now=ctx.now, today=today,
                    subject=hazard.number, days_left=(hazard.deadline - today).days, **data)
            continue
        over = ctx.calendar.workdays_between(hazard.deadline, today)
        data["days_over"], data["calendar_days"] = over, (today - hazard.deadline).days
        if ctx.daytime:
            queued += ctx.pusher.routine(
                session=ctx.session, key=f"overdue:{hazard.id}:{today}", to=owners,
                template="reminders/overdue_item.txt.j2", now=ctx.now, today=today,
                subject=hazard.number, **data)
        queued += _escalate(ctx, hazard, over, data)
    return queued


def _escalate(ctx: SweepCtx, hazard: Hazard, over: int, data: dict) -> int:
    """One push per level and deadline: an extension starts the ladder again."""
    units = unit_chain(session=ctx.session, unit_id=hazard.unit_id)
    key = f"{hazard.id}:{hazard.deadline.isoformat()}"
    if hazard.level == Level.MAJOR:
        return ctx.pusher.alert(session=ctx.session, key=f"overdue-major:{key}",
                                to=supervisors(ctx.session, units, include_own=True),
                                template="reminders/overdue_escalation.txt.j2", now=ctx.now,
                                who="major", **data)
    queued = 0
    if over >= ctx.settings.overdue_principal_days:
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"overdue-principal:{key}",
            to=userids_with_roles(session=ctx.session, unit_id=hazard.unit_id,
                                  roles={Role.LEADER}),
            template="reminders/overdue_escalation.txt.j2", now=ctx.now, who="principal",
            **data)
    if over >= ctx.settings.overdue_township_days:
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"overdue-township:{key}",
            to=supervisors(ctx.session, units, include_own=False),
            template="reminders/overdue_escalation.txt.j2", now=ctx.now, who="township",
            **data)
    return queued
