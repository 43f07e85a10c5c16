"""Monthly updates (月报), daily, daytime only.

Last month's update is due on ``[monthly] due_day``. Each reporting unit (township central
schools, schools, kindergartens) without a submitted update finds a reminder in its liaisons'
morning digest on the 1st, two days before the due day and on the due day (on the due day the
principal's too; a unit without a bound liaison: the principal). From the day after the due
day, the chain's leaders get the list of units that did not submit — a township's leaders and
safety officers for their units, the bureau's safety officers for every unit — once, up to
``CATCH_UP_DAYS`` late if the service was down that morning. A month whose late window is over
is marked locked.
"""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import monthly as mo
from models.monthly_report import REPORTING_KINDS
from models.org import Person, PersonRole, Role, Unit, UnitKind
from reminders.sweep import SweepCtx

CATCH_UP_DAYS = 3
MAX_LISTED = 60  # units named in one message; more are counted
BEFORE_DUE = 2


def sweep(ctx: SweepCtx) -> int:
    if not ctx.daytime:
        return 0
    today, cfg = ctx.today, ctx.monthly
    first_of_month = today.replace(day=1)
    for back in (1, 2):  # a lock may fall in the month after the due day's month
        month = mo.month_key(first_of_month - timedelta(days=1 + 31 * (back - 1)))
        if today > mo.window(month, due_day=cfg.due_day, late_days=cfg.late_days).lock:
            mo.lock_month(session=ctx.session, month=month)
    win = mo.window(mo.previous_month(today), due_day=cfg.due_day, late_days=cfg.late_days)
    remind_on = {first_of_month, win.due - timedelta(days=BEFORE_DUE), win.due}
    if today in remind_on:
        return _remind(ctx, win)
    if 1 <= (today - win.due).days <= CATCH_UP_DAYS:
        return _report_missing(ctx, win)
    return 0


def _missing(ctx: SweepCtx, win: mo.Window) -> tuple[dict[int, Unit], dict[int, bool]]:
    """Every unit and the reporting units that have not submitted → whether they have a
    draft."""
    units = {u.id: u for u in ctx.session.exec(select(Unit)).all()}
    reporting = [u.id for u in units.values() if u.kind in REPORTING_KINDS]
    updates = mo.updates_of(session=ctx.session, month=win.month, unit_ids=reporting)
    missing = {u: u in updates for u in reporting
               if u not in updates or updates[u].status != mo.UpdateStatus.SUBMITTED}
    return units, missing


def _people(ctx: SweepCtx, unit_ids: list[int], roles: set[str]) -> dict[int, dict[str, list]]:
    """unit → role → bound userids, for all ``unit_ids`` in one query."""
    found: dict[int, dict[str, list]] = {}
    if not unit_ids:
        return found
    rows = ctx.session.exec(
        select(Person.unit_id, PersonRole.role, Person.userid)
        .join(PersonRole, PersonRole.person_id == Person.id)
        .where(Person.unit_id.in_(unit_ids), PersonRole.role.in_(roles),
               Person.userid.is_not(None)).order_by(Person.userid)).all()
    for unit_id, role, userid in rows:
        found.setdefault(unit_id, {}).setdefault(role, []).append(userid)
    return found


def _remind(ctx: SweepCtx, win: mo.Window) -> int:
    units, missing = _missing(ctx, win)
    people = _people(ctx, list(missing), {Role.LIAISON, Role.LEADER})
    days_left = (win.due - ctx.today).days
    queued = 0
    for unit_id in sorted(missing):
        roles = people.get(unit_id, {})
        liaisons = roles.get(Role.LIAISON, [])
        leaders = roles.get(Role.LEADER, []) if days_left == 0 or not liaisons else []
        queued += ctx.pusher.routine(
            session=ctx.session, key=f"monthly:{win.month}:{unit_id}:{ctx.today}",
            to=list(dict.fromkeys([*liaisons, *leaders])),
            template="monthly/reminder_item.txt.j2", now=ctx.now, today=ctx.today,
            unit=units[unit_id].name, month=win.month, due=win.due, days_left=days_left,
            draft=missing[unit_id])
    return queued


def _report_missing(ctx: SweepCtx, win: mo.Window) -> int:
    units, missing = _missing(ctx, win)
    above = {p for u in missing for p in _ancestors(units, u)}
    people = _people(ctx, list(above), {Role.LEADER, Role.SAFETY_OFFICER})
    by_user: dict[str, set[int]] = {}
    for unit_id in missing:
        for parent in _ancestors(units, unit_id):
            kind = units[parent].kind
            roles = ((Role.LEADER, Role.SAFETY_OFFICER) if kind == UnitKind.TOWNSHIP
                     else (Role.SAFETY_OFFICER,) if kind == UnitKind.BUREAU else ())
            for role in roles:
                for user in people.get(parent, {}).get(role, []):
                    by_user.setdefault(user, set()).add(unit_id)
    queued = 0
    for user, ids in sorted(by_user.items()):
        listed = sorted(({"name": units[u].name, "draft": missing[u]} for u in ids),
                        key=lambda u: u["name"])
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"monthly-missing:{win.month}", to=[user],
            template="monthly/missing_list.txt.j2", now=ctx.now, month=win.month, due=win.due,
            lock=win.lock, units=listed[:MAX_LISTED], total=len(listed))
    return queued


def _ancestors(units: dict[int, Unit], unit_id: int) -> list[int]:
    out, parent = [], units[unit_id].parent_id
    while parent is not None and len(out) < 16:
        out.append(parent)
        parent = units[parent].parent_id
    return out
