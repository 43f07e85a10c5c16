"""The nightly check of rosters and escalation chains (bot/duty_check.py), from 21:00 local:
each unit with something wrong is reported once a day to its nearest admins, so a
misconfiguration surfaces before an escalation needs it."""
from __future__ import annotations

from datetime import time

from bot.duty_check import findings
from models.duty_facts import nearest_admins
from reminders.sweep import SweepCtx

NIGHTLY = time(21, 0)


def sweep(ctx: SweepCtx) -> int:
    if ctx.local_now.time() < NIGHTLY:
        return 0
    queued = 0
    for unit in findings(session=ctx.session, today=ctx.today, calendar=ctx.calendar):
        if not unit["issues"]:
            continue
        queued += ctx.pusher.timely(session=ctx.session,
                                    key=f"duty-check:{unit['unit_id']}:{ctx.today.isoformat()}",
                                    to=nearest_admins(ctx.session, unit["unit_id"]),
                                    template="duty/check_unit.txt.j2", now=ctx.now,
                                    today=ctx.today, **unit)
    return queued
