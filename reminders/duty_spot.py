"""Spot checks (查岗): the unanswered ones escalate, and the bureau's random schedule asks.

No answer 5 minutes after a spot check: the leader on duty (else the principal); 5 more: the
bureau's safety officers and whoever asked. Both are ``alert``s: a spot check at night is the
point. A random schedule picks its moments and units from a hash of the plan and the day, so
every instance picks the same ones and each is asked once (``SpotCheck.plan_key``).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

from handlers.duty_spot import push_spot
from handlers.hazard_common import Notices
from models import duty_spot
from models.base import as_utc
from models.duty import Shift, current_shift
from models.duty_facts import bureau_officers, facts, leader_on_duty, userid_of
from models.org import Person, Unit, unit_and_descendants
from reminders.sweep import SweepCtx

WINDOW = timedelta(minutes=60)  # a scheduled moment missed by longer than this is skipped


def sweep(ctx: SweepCtx) -> int:
    return _escalate(ctx) + _scheduled(ctx)


def _escalate(ctx: SweepCtx) -> int:
    queued = 0
    for check in duty_spot.unanswered(session=ctx.session, now=ctx.now):
        asked = as_utc(check.asked_at)
        due = 1 if ctx.now - asked < 2 * duty_spot.ANSWER_WITHIN else 2
        shift = ctx.session.get(Shift, check.shift_id) if check.shift_id else None
        person = userid_of(ctx.session, check.person_id)
        data = {**(facts(ctx.session, shift) if shift else {}),
                "unit": ctx.session.get(Unit, check.unit_id).name, "asked_at": asked,
                "asker": _name(ctx, check.asked_by)}
        told = [person] if person else []
        for step in range(1, due + 1):
            if step == 1:
                to = [u for u in leader_on_duty(ctx.session, shift) if u not in told]
            else:
                asker = userid_of(ctx.session, check.asked_by)
                to = [u for u in dict.fromkeys(bureau_officers(ctx.session, check.unit_id)
                                               + ([asker] if asker else [])) if u not in told]
            told += to
            if step > check.escalation:
                queued += ctx.pusher.alert(session=ctx.session,
                                           key=f"duty-spot-esc:{check.id}:{step}", to=to,
                                           template="duty/spot_escalate.txt.j2", now=ctx.now,
                                           step=step, **data)
        check.escalation = max(check.escalation, due)
    return queued


def _name(ctx: SweepCtx, person_id: int | None) -> str:
    person = ctx.session.get(Person, person_id) if person_id else None
    return person.name if person else ""


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def moments(plan_id: int, per_day: int, day, tz) -> list[datetime]:
    """The day's scheduled moments of a plan (local times, any minute of the day)."""
    found = []
    for i in range(per_day):
        minute = _hash(plan_id, day, i) % (24 * 60)
        found.append(datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz))
    return found


def _scheduled(ctx: SweepCtx) -> int:
    queued = 0
    notices = Notices(ctx.pusher.renderer)
    for plan in duty_spot.plans(session=ctx.session):
        for i, moment in enumerate(moments(plan.id, plan.per_day, ctx.today, ctx.tz)):
            if not moment <= ctx.local_now < moment + WINDOW:
                continue
            units = unit_and_descendants(session=ctx.session, unit_id=plan.unit_id)[1:]
            on_duty = [(u, s) for u in units
                       if (s := current_shift(session=ctx.session, unit_id=u.id, now=ctx.now))]
            if not on_duty:
                continue
            unit, shift = on_duty[_hash(plan.id, ctx.today, i, "unit") % len(on_duty)]
            check = duty_spot.ask(session=ctx.session, unit_id=unit.id, shift_id=shift.id,
                                  person_id=shift.person_id, asked_by=None, now=ctx.now,
                                  plan_key=f"plan:{plan.id}:{ctx.today.isoformat()}:{i}")
            if check is not None:
                queued += push_spot(ctx.session, notices, check, shift, ctx.now, asker="")
    return queued
