"""Duty shifts: reminders before a shift, the missed check-in ladder, and slot-change notices.

- the evening before (from 19:00 local) and an hour before the start: ``timely`` (quiet hours
  hold the evening one; the hour-before card never waits past the start);
- no check-in ``checkin_grace_min`` after the start (or after the person was put on the slot):
  a second reminder to the person, 15 minutes later the leader on duty, 15 more the principal,
  each an ``alert`` (at once, day or night) and each once;
- a person whose slot changed is told (``timely``).
"""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlmodel import select

from handlers.hazard_common import supervisors
from models import outbox
from models.base import as_utc
from models.duty import DutyChange, Shift
from models.duty_facts import facts, leader_on_duty, principals, userid_of
from models.org import Person, Unit, unit_chain
from reminders.pusher import Push
from reminders.quiet import release_at
from reminders.sweep import SweepCtx

EVENING = time(19, 0)
HOUR_BEFORE = timedelta(hours=1)
LOOK_AHEAD = timedelta(hours=36)
STEP = timedelta(minutes=15)
LAST_STEP = 3


def sweep(ctx: SweepCtx) -> int:
    # every shift's facts name its unit and people: read them all once (a sweep session keeps
    # what it loads, reminders/sweep.py) rather than one by one for thousands of shifts
    ctx.session.exec(select(Person)).all()
    ctx.session.exec(select(Unit)).all()
    return _reminders(ctx) + _escalations(ctx) + _changes(ctx)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M")


def card_rows(ctx: SweepCtx, *, key: str, to: list[str], template: str, urgent: bool,
              hold: datetime | None, **data) -> list[dict]:
    """A template card per person (keys ``key:userid``), held until ``hold`` if given: the
    outbox rows, for one insert of many (``outbox.enqueue_many``)."""
    rows = []
    for userid in to:
        task_id = f"{key}-{userid}".replace(":", "-")[:128]
        body = json.loads(ctx.pusher.renderer.render(template, task_id=task_id, **data))
        rows.append(outbox.row(key=f"{key}:{userid}", recipient=userid, msgtype="template_card",
                               payload=body, now=ctx.now, urgent=urgent, not_before=hold))
    return rows


def _reminders(ctx: SweepCtx) -> int:
    rows = ctx.session.exec(select(Shift).where(
        Shift.checked_in_at.is_(None), Shift.start_at > ctx.now,
        Shift.start_at <= ctx.now + LOOK_AHEAD).order_by(Shift.start_at)).all()
    hold = release_at(ctx.now, ctx.tz, ctx.quiet_hours)
    due: list[tuple[Shift, str, str, str]] = []  # (shift, key, userid, who: hour|person|leader)
    for shift in rows:
        start = as_utc(shift.start_at)
        userid = userid_of(ctx.session, shift.person_id)
        if userid is None:
            continue
        stamp = _stamp(start)
        if ctx.now >= start - HOUR_BEFORE:
            due.append((shift, f"duty-hour:{shift.id}:{stamp}", userid, "hour"))
            continue
        evening = datetime.combine(start.astimezone(ctx.tz).date() - timedelta(days=1),
                                   EVENING, tzinfo=ctx.tz)
        if not evening <= ctx.local_now < evening + timedelta(hours=5):
            continue
        if hold is not None and hold >= start - HOUR_BEFORE:
            continue  # held that long it would come after the hour-before card
        leader = userid_of(ctx.session, shift.leader_id)
        for who, to in (("person", userid), ("leader", leader)):
            if to and (who == "person" or to != userid):
                due.append((shift, f"duty-eve:{shift.id}:{stamp}:{who}", to, who))
    # an earlier pass queued most of them: skip those before reading facts or rendering
    taken = ctx.pusher.taken(session=ctx.session, outbox_=[f"{k}:{u}" for _, k, u, _ in due])
    cards: list[dict] = []
    pushes: list[Push] = []
    for shift, key, to, who in due:
        if f"{key}:{to}" in taken:
            continue
        info = facts(ctx.session, shift)
        if who == "hour":
            start = as_utc(shift.start_at)
            cards += card_rows(ctx, key=key, to=[to], template="duty/checkin.card.json.j2",
                               urgent=False, hold=hold if hold and hold < start else None,
                               when="hour", **info)
        else:
            pushes.append(Push("timely", key, [to], "duty/remind_eve.txt.j2",
                               {"who": who, **info}))
    return (len(outbox.enqueue_many(session=ctx.session, rows=cards))
            + ctx.pusher.push_all(session=ctx.session, pushes=pushes, now=ctx.now))


def _escalations(ctx: SweepCtx) -> int:
    grace = timedelta(minutes=ctx.settings.checkin_grace_min)
    rows = ctx.session.exec(select(Shift).where(
        Shift.checked_in_at.is_(None), Shift.closed_at.is_(None),
        Shift.start_at <= ctx.now - grace, Shift.end_at > ctx.now,
        Shift.escalation < LAST_STEP)).all()
    cards: list[dict] = []
    pushes: list[Push] = []
    for shift in rows:
        base = max(as_utc(shift.start_at), as_utc(shift.assigned_at))
        late = ctx.now - base
        if late < grace:
            continue
        due = min(LAST_STEP, 1 + int((late - grace) / STEP))
        info = facts(ctx.session, shift)
        info["late_min"] = int((ctx.now - as_utc(shift.start_at)).total_seconds() // 60)
        told: list[str] = [info["person_userid"]] if info["person_userid"] else []
        for step in range(1, due + 1):
            key = f"duty-esc:{shift.id}:{_stamp(base)}:{step}"
            to = _step_recipients(ctx, shift, step, told)
            told += to
            if step <= shift.escalation:
                continue
            if step == 1:
                cards += card_rows(ctx, key=key, to=to, template="duty/checkin.card.json.j2",
                                   urgent=True, hold=None, when="late", **info)
            else:
                pushes.append(Push("alert", key, to, "duty/escalate.txt.j2",
                                   {"step": step, **info}))
        shift.escalation = max(shift.escalation, due)
    return (len(outbox.enqueue_many(session=ctx.session, rows=cards))
            + ctx.pusher.push_all(session=ctx.session, pushes=pushes, now=ctx.now))


def _step_recipients(ctx: SweepCtx, shift: Shift, step: int, told: list[str]) -> list[str]:
    """1: the person; 2: the leader on duty (else the principal); 3: the principal, or when
    the principal was told already, the township and the bureau."""
    if step == 1:
        return told[:1]
    if step == 2:
        return [u for u in leader_on_duty(ctx.session, shift) if u not in told]
    fresh = [u for u in principals(ctx.session, shift.unit_id) if u not in told]
    if fresh:
        return fresh
    units = unit_chain(session=ctx.session, unit_id=shift.unit_id)
    return [u for u in supervisors(ctx.session, units, include_own=False) if u not in told]


def _changes(ctx: SweepCtx) -> int:
    rows = ctx.session.exec(select(DutyChange).where(DutyChange.notified_at.is_(None))
                            .order_by(DutyChange.id)).all()
    queued = 0
    for change in rows:
        change.notified_at = ctx.now
        userid = userid_of(ctx.session, change.person_id)
        shift = ctx.session.get(Shift, change.shift_id)
        if userid is None or shift is None:
            continue
        queued += ctx.pusher.timely(session=ctx.session, key=f"duty-change:{change.id}",
                                    to=[userid], template="duty/change_notice.txt.j2",
                                    now=ctx.now, what=change.what, **facts(ctx.session, shift))
    return queued
