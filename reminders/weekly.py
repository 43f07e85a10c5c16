"""The weekly digest: last week's numbers for the scope of each principal (组长 of a school or
kindergarten), each township central school's leaders and safety officers, and the bureau's
leaders and safety officers — the figures of ``统计``, for the week.

It goes out on the first working day of the ISO week (Monday, unless it is a holiday), from the
daily digest's time and outside the quiet hours; a week whose first working day was missed
(the service was down) catches up on a later day of the same week. One per person per ISO week
(key ``weekly:2026-W48:<userid>``).

Figures are computed once per pass for every unit and added up per scope, so a district of
hundreds of leaders costs a handful of queries.
"""
from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import select

from bot.config import parse_hhmm
from bot.pushes import text_rows
from models import outbox, scope_stats
from models.leader_monthly import Calendar, month_status
from models.org import Person, PersonRole, Role, Unit, UnitKind
from models.stats import periods_stats
from reminders.sweep import SweepCtx

TEMPLATE = "stats/weekly.txt.j2"
ROLES = {UnitKind.SCHOOL: {Role.LEADER}, UnitKind.KINDERGARTEN: {Role.LEADER},
         UnitKind.TOWNSHIP: {Role.LEADER, Role.SAFETY_OFFICER},
         UnitKind.BUREAU: {Role.LEADER, Role.SAFETY_OFFICER}}


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def is_due(ctx: SweepCtx) -> bool:
    """From the first working day of this ISO week, at the digest time, in the daytime."""
    monday = scope_stats.week_start(ctx.today)
    first = next((monday + timedelta(days=i) for i in range(7)
                  if ctx.calendar.is_workday(monday + timedelta(days=i))), None)
    if first is None or ctx.today < first or not ctx.daytime:
        return False
    return ctx.today > first or ctx.local_now.time() >= time(*parse_hhmm(ctx.settings.digest_time))


def recipients(ctx: SweepCtx) -> list[tuple[str, int]]:
    """(userid, unit id) of everyone the digest is for, in a stable order."""
    rows = ctx.session.execute(
        select(Person.userid, Person.unit_id, Unit.kind, PersonRole.role)
        .join(PersonRole, PersonRole.person_id == Person.id)
        .join(Unit, Unit.id == Person.unit_id)
        .where(Person.userid.is_not(None))).all()
    found = {(userid, unit_id) for userid, unit_id, kind, role in rows
             if role in ROLES.get(kind, ())}
    return sorted(found)


def sweep(ctx: SweepCtx) -> int:
    if not is_due(ctx):
        return 0
    week = week_key(ctx.today)
    prefix = f"weekly:{week}:"
    sent = set(ctx.session.execute(select(outbox.OutboxMessage.key)
                                   .where(outbox.OutboxMessage.key.like(prefix + "%"))).scalars())
    todo = [(u, unit) for u, unit in recipients(ctx) if prefix + u not in sent]
    if not todo:
        return 0
    figures = _figures(ctx)
    texts: dict[int, str] = {}  # a unit's leaders and officers read the same figures
    rows = []
    for userid, unit_id in todo:
        if unit_id not in texts:
            texts[unit_id] = ctx.pusher.renderer.render(TEMPLATE, **figures.scope(unit_id))
        rows += text_rows(key=prefix + userid, to=userid, text=texts[unit_id], now=ctx.now)
    return len(outbox.enqueue_many(session=ctx.session, rows=rows))


class _Figures:
    """Every unit's figures for last week, the week before and today; added up per scope."""

    def __init__(self, *, units: list[Unit], now: dict, before: dict, open_: dict,
                 monthly: dict[str, Any], period: dict[str, date]) -> None:
        self.units = {u.id: u for u in units}
        self.children: dict[int | None, list[Unit]] = {}
        for unit in sorted(units, key=lambda u: u.code):
            self.children.setdefault(unit.parent_id, []).append(unit)
        self.now, self.before, self.open, self.monthly, self.period = (now, before, open_,
                                                                        monthly, period)

    def subtree(self, unit_id: int) -> list[Unit]:
        out, stack = [], [self.units[unit_id]]
        while stack:
            unit = stack.pop()
            out.append(unit)
            stack.extend(reversed(self.children.get(unit.id, [])))
        return out

    def scope(self, unit_id: int) -> dict[str, Any]:
        units = self.subtree(unit_id)
        ids = [u.id for u in units]
        states = [self.monthly["states"][i] for i in ids if i in self.monthly["states"]]
        return {"unit": units[0].name, "units": len(units), **self.period,
                "totals": scope_stats.add_up(self.now[i] for i in ids),
                "before": scope_stats.add_up(self.before[i] for i in ids),
                "now": scope_stats.open_total(self.open, ids),
                "top": scope_stats.top_overdue(self.open, [(u.id, u.name) for u in units]),
                "monthly": {"month": self.monthly["month"], "due": self.monthly["due"],
                            "owing": len(states),
                            **{s: states.count(s) for s in ("on_time", "late", "missing",
                                                            "pending")}}}


def _figures(ctx: SweepCtx) -> _Figures:
    units = list(ctx.session.execute(select(Unit)).scalars())
    ids = [u.id for u in units]
    start = scope_stats.week_start(ctx.today) - timedelta(weeks=1)
    end, before_start = start + timedelta(days=6), start - timedelta(weeks=1)
    now, before = periods_stats(session=ctx.session, unit_ids=ids, tz=ctx.tz, today=ctx.today,
                                periods=[(start, end),
                                         (before_start, before_start + timedelta(days=6))])
    cal = Calendar(ctx.monthly.due_day, ctx.monthly.late_days)
    status = month_status(session=ctx.session, unit_ids=ids, today=ctx.today, cal=cal)
    return _Figures(units=units, now=now, before=before,
                    open_=scope_stats.open_by_unit(session=ctx.session, unit_ids=ids,
                                                   today=ctx.today),
                    monthly={"month": status["month"], "due": status["due"],
                             "states": {r["unit_id"]: r["state"] for r in status["rows"]}},
                    period={"start": start, "end": end, "today": ctx.today})
