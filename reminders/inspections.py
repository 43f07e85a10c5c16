"""Inspection quotas (seed 004: 主要负责人每半月至少带队督促检查1次，其他负责人不少于2次), daily.

Three days before a half month ends, each school or kindergarten leader short of their quota
finds a reminder in their morning digest (up to the period's last day, if the service was down
that morning). From the day after it ends, the bureau's safety officers get the list of
leaders who fell short in it, once.
"""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import inspection as insp
from models.org import Role, Unit, UnitKind, unit_and_descendants, userids_with_roles
from reminders.pusher import Push
from reminders.sweep import SweepCtx

WARN_DAYS = 3      # remind this many days before the period ends
CATCH_UP_DAYS = 3  # the bureau's list may still go this many days late (downtime)
MAX_LISTED = 60


def sweep(ctx: SweepCtx) -> int:
    if not ctx.daytime:
        return 0
    return _warn(ctx) + _report(ctx)


def _warn(ctx: SweepCtx) -> int:
    period = insp.period_of(ctx.today)
    if not period.end - timedelta(days=WARN_DAYS) <= ctx.today < period.end:
        return 0
    short = [r for r in insp.quota_rows(session=ctx.session, period=period, tz=ctx.tz)
             if r.short]
    # an earlier pass queued most of them: skip those before rendering anything
    taken = ctx.pusher.taken(session=ctx.session, digest=[
        f"inspection-quota:{period.start}:{r.person_id}:{r.userid}" for r in short])
    pushes = [Push("routine", f"inspection-quota:{period.start}:{row.person_id}", [row.userid],
                   "inspection/quota_reminder.txt.j2",
                   {"start": period.start, "end": period.end, "done": row.done,
                    "quota": row.quota, "principal": row.role == Role.LEADER,
                    "days_left": (period.end - ctx.today).days})
              for row in short
              if f"inspection-quota:{period.start}:{row.person_id}:{row.userid}" not in taken]
    return ctx.pusher.push_all(session=ctx.session, pushes=pushes, now=ctx.now,
                               today=ctx.today)


def _report(ctx: SweepCtx) -> int:
    period = insp.previous_period(ctx.today)
    if (ctx.today - period.end).days > CATCH_UP_DAYS:
        return 0
    queued = 0
    for bureau in ctx.session.exec(select(Unit).where(Unit.kind == UnitKind.BUREAU)).all():
        officers = userids_with_roles(session=ctx.session, unit_id=bureau.id,
                                      roles={Role.SAFETY_OFFICER})
        if not officers:
            continue
        scope = [u.id for u in unit_and_descendants(session=ctx.session, unit_id=bureau.id)]
        short = [r for r in insp.quota_rows(session=ctx.session, period=period, tz=ctx.tz,
                                            unit_ids=scope) if r.short]
        if not short:
            continue
        rows = [{"unit": r.unit_name, "name": r.name, "principal": r.role == Role.LEADER,
                 "done": r.done, "quota": r.quota} for r in short]
        queued += ctx.pusher.timely(
            session=ctx.session, key=f"inspection-short:{period.start}", to=officers,
            template="inspection/short_report.txt.j2", now=ctx.now, start=period.start,
            end=period.end, rows=rows[:MAX_LISTED], total=len(rows))
    return queued
