"""Campaign deadlines (专项行动), daily.

Before a deliverable is due (``deadline_days`` days before: 7, 3, 1 and on the day), each
covered unit that has not submitted it gets a reminder in its liaisons' morning digest (on the
day its principal's too; a unit without a bound liaison: the principal). From the morning
after, the chain's leaders get the list of units that did not deliver: a township's leaders and
safety officers for their schools, the bureau's safety officers for every unit — once, and up
to ``CATCH_UP_DAYS`` late if the service was down that morning.
"""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import campaign as cp
from models.org import Role, Unit, UnitKind, userids_with_roles
from reminders.pusher import Push
from reminders.sweep import SweepCtx

CATCH_UP_DAYS = 3
MAX_LISTED = 60  # units named in one message; more are counted


def sweep(ctx: SweepCtx) -> int:
    if not ctx.daytime:
        return 0
    today = ctx.today
    ahead = {today + timedelta(days=d): d for d in ctx.settings.deadline_days}
    behind = {today - timedelta(days=d) for d in range(1, CATCH_UP_DAYS + 1)}
    queued = 0
    for item, campaign in cp.due_on(session=ctx.session, days={*ahead, *behind}):
        covered = cp.covered_unit_ids(session=ctx.session, campaign=campaign)
        missing = covered - cp.submitted_units(session=ctx.session, deliverable_id=item.id)
        if not missing:
            continue
        data = {"campaign": campaign.name, "item": _item(item)}
        if item.due in ahead:
            queued += _remind(ctx, item, missing, ahead[item.due], data)
        else:
            queued += _report_missing(ctx, item, missing, data)
    return queued


def _item(item: cp.Deliverable) -> dict:
    return {"id": item.id, "name": item.name, "month": item.month, "due": item.due,
            "note": item.note}


def _remind(ctx: SweepCtx, item: cp.Deliverable, missing: set[int], days: int,
            data: dict) -> int:
    phase = ctx.session.get(cp.CampaignPhase, item.phase_id)
    if phase is not None and ctx.today < phase.starts_on:
        return 0  # no reminders before the phase has begun
    owed: list[tuple[int, list[str]]] = []
    for unit_id in sorted(missing):
        liaisons = userids_with_roles(session=ctx.session, unit_id=unit_id, roles={Role.LIAISON})
        leaders = (userids_with_roles(session=ctx.session, unit_id=unit_id, roles={Role.LEADER})
                   if days == 0 or not liaisons else [])
        owed.append((unit_id, list(dict.fromkeys([*liaisons, *leaders]))))
    # an earlier pass today queued most of them: skip those before rendering anything
    taken = ctx.pusher.taken(session=ctx.session, digest=[
        f"campaign:{item.id}:{unit_id}:{days}:{u}" for unit_id, to in owed for u in to])
    queued = 0
    pushes: list[Push] = []
    for unit_id, to in owed:
        to = [u for u in to if f"campaign:{item.id}:{unit_id}:{days}:{u}" not in taken]
        if not to:
            continue
        pushes.append(Push("routine", f"campaign:{item.id}:{unit_id}:{days}", to,
                           "campaign/reminder_item.txt.j2", {"days_left": days, **data}))
        queued += ctx.pusher.group(
            session=ctx.session, key=f"campaign-group:{item.id}:{unit_id}:{days}",
            unit_id=unit_id, template="campaign/reminder_item.txt.j2", now=ctx.now,
            days_left=days, **data)
    return queued + ctx.pusher.push_all(session=ctx.session, pushes=pushes, now=ctx.now,
                                        today=ctx.today)


def _report_missing(ctx: SweepCtx, item: cp.Deliverable, missing: set[int],
                    data: dict) -> int:
    units = {u.id: u for u in ctx.session.exec(select(Unit)).all()}
    watchers: dict[int, list[str]] = {}  # unit above -> who hears about the units below it
    by_user: dict[str, set[str]] = {}
    for unit_id in missing:
        above = units[unit_id].parent_id
        while above is not None:
            if above not in watchers:
                kind = units[above].kind
                roles = ({Role.LEADER, Role.SAFETY_OFFICER} if kind == UnitKind.TOWNSHIP
                         else {Role.SAFETY_OFFICER} if kind == UnitKind.BUREAU else set())
                watchers[above] = userids_with_roles(session=ctx.session, unit_id=above,
                                                     roles=roles) if roles else []
            for user in watchers[above]:
                by_user.setdefault(user, set()).add(units[unit_id].name)
            above = units[above].parent_id
    queued = 0
    for user, names in sorted(by_user.items()):
        listed = sorted(names)
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"campaign-missing:{item.id}", to=[user],
            template="campaign/missing.txt.j2", now=ctx.now, units=listed[:MAX_LISTED],
            total=len(listed), **data)
    return queued
