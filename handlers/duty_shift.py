"""A shift from the duty person's side: 签到 [位置] (or a location message, or the card's button),
平安 / 报告 <情况> to close it, 交班 <情况> for the next shift, and 紧急 <情况>, which reaches every
leader of the chain at once (seed 001: 遇有突发事件或重要紧急情况要立即报告)."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.context import Ctx
from bot.messages import Incoming, Reply
from handlers.hazard_common import Notices, supervisors
from handlers.hazard_review import _push_reply
from bot.router import Router
from models import duty
from models.base import as_utc
from models.duty_facts import facts, leader_on_duty, userid_of
from models.org import Identity, Person, Role, unit_chain, userids_with_roles

router = Router("duty_shift")
MAX_NOTE = 500


@router.command("签到")
async def check_in(msg: Incoming, ctx: Ctx) -> Reply:
    """签到 [位置] —— 值班签到；平安、报告 结束本班，交班 留言，紧急 立即上报，请假 登记"""
    return await _checked_in(ctx, location=ctx.args[:200], shift_id=None)


@router.event("message:location")
async def on_location(msg: Incoming, ctx: Ctx) -> Reply:
    """A location message outside any conversation checks in with that place."""
    lat, lng, label = msg.location or (0.0, 0.0, "")
    place = label or f"{lat:.5f},{lng:.5f}"
    return await _checked_in(ctx, location=place[:200], shift_id=None)


@router.card("duty:checkin:")
async def on_card(msg: Incoming, ctx: Ctx) -> Reply:
    """The 签到 button of a shift reminder: duty:checkin:<shift id>."""
    raw = msg.card.event_key.rsplit(":", 1)[-1]
    reply = await _checked_in(ctx, location="", shift_id=int(raw) if raw.isdigit() else -1)
    await _push_reply(ctx, reply, f"card:{msg.dedupe_key}")
    done = reply.data.get("outcome") in ("done", "already")
    return Reply.update_button("已签到" if done else "未能签到")


async def _checked_in(ctx: Ctx, *, location: str, shift_id: int | None) -> Reply:
    result = await ctx.db.run(_check_in, who=ctx.identity, location=location, now=ctx.now,
                              shift_id=shift_id, notices=ctx.services["notices"])
    return Reply.of("duty/checked_in.txt.j2", **result)


def _check_in(*, session: Session, who: Identity, location: str, now: datetime,
              shift_id: int | None, notices: Notices) -> dict:
    if shift_id is None:
        shift = duty.shift_to_check_in(session=session, person_id=who.person_id, now=now)
    else:
        shift = session.get(duty.Shift, shift_id)
        if shift is not None and (shift.person_id != who.person_id
                                  or as_utc(shift.end_at) <= now
                                  or as_utc(shift.start_at) > now + duty.CHECKIN_EARLY):
            shift = None
    if shift is None:
        upcoming = session.exec(select(duty.Shift).where(
            duty.Shift.person_id == who.person_id, duty.Shift.start_at > now)
            .order_by(duty.Shift.start_at)).first()
        return {"outcome": "no_shift", "next": facts(session, upcoming) if upcoming else None}
    if shift.checked_in_at is not None:
        if location and not shift.checkin_location:
            shift.checkin_location = location
        return {"outcome": "already", **facts(session, shift)}
    shift.checked_in_at, shift.checkin_location = now, location
    previous = duty.neighbour(session=session, shift=shift, after=False)
    info = facts(session, shift)
    if shift.escalation >= 2:  # the leader was alerted: tell them it is settled
        notices.text(session=session, template="duty/late_checkin.txt.j2",
                     key=f"duty-late-checkin:{shift.id}", to=leader_on_duty(session, shift),
                     now=now, **info)
    late = int((now - as_utc(shift.start_at)).total_seconds() // 60)
    return {"outcome": "done", **info, "late_min": late,
            "handover": previous.handover_note if previous else "",
            "handover_by": session.get(Person, previous.person_id).name if previous else ""}


@router.command("平安", hidden=True)
async def all_safe(msg: Incoming, ctx: Ctx) -> Reply:
    """平安 —— 本班平安无事，结束值班"""
    return await _closed(ctx, note="", report=False)


@router.command("报告", hidden=True)
async def report(msg: Incoming, ctx: Ctx) -> Reply:
    """报告 <情况> —— 报告值班情况并结束本班（紧急情况请用「紧急」）"""
    if not ctx.args:
        return Reply.of("duty/usage.txt.j2", command="报告")
    return await _closed(ctx, note=ctx.args[:MAX_NOTE], report=True)


async def _closed(ctx: Ctx, *, note: str, report: bool) -> Reply:
    result = await ctx.db.run(_close, who=ctx.identity, note=note, report=report, now=ctx.now,
                              notices=ctx.services["notices"])
    return Reply.of("duty/closed.txt.j2", **result)


def _close(*, session: Session, who: Identity, note: str, report: bool, now: datetime,
           notices: Notices) -> dict:
    shift = duty.open_shift(session=session, person_id=who.person_id, now=now)
    if shift is None:
        return {"outcome": "no_shift", "report": report}
    if shift.checked_in_at is None:
        return {"outcome": "not_checked_in", "report": report, **facts(session, shift)}
    shift.closed_at, shift.close_note = now, note
    info = facts(session, shift)
    told = 0
    if report:
        to = [u for u in leader_on_duty(session, shift) if u != who.userid]
        told = notices.text(session=session, template="duty/report_notice.txt.j2",
                            key=f"duty-report:{shift.id}", to=to, now=now, **info)
    return {"outcome": "closed", "report": report, "told": told, **info}


@router.command("交班", hidden=True)
async def handover(msg: Incoming, ctx: Ctx) -> Reply:
    """交班 <情况> —— 给下一班留交接班记录"""
    if not ctx.args:
        return Reply.of("duty/usage.txt.j2", command="交班")
    result = await ctx.db.run(_handover, who=ctx.identity, note=ctx.args[:MAX_NOTE],
                              now=ctx.now, notices=ctx.services["notices"])
    return Reply.of("duty/handover.txt.j2", **result)


def _handover(*, session: Session, who: Identity, note: str, now: datetime,
              notices: Notices) -> dict:
    shift = duty.open_shift(session=session, person_id=who.person_id, now=now,
                            include_closed=True)
    if shift is None:
        return {"outcome": "no_shift"}
    shift.handover_note = note
    nxt = duty.neighbour(session=session, shift=shift, after=True)
    info = facts(session, shift)
    sent = 0
    target = userid_of(session, nxt.person_id) if nxt else None
    if target and target != who.userid:
        sent = notices.text(session=session, template="duty/handover_notice.txt.j2",
                            key=f"duty-handover:{shift.id}:{now.isoformat()}", to=[target],
                            now=now, **info, next=facts(session, nxt))
    return {"outcome": "saved", **info, "next": facts(session, nxt) if nxt else None,
            "sent": sent}


@router.command("紧急", hidden=True)  # 签到's help line names it
async def urgent(msg: Incoming, ctx: Ctx) -> Reply:
    """紧急 <情况> —— 突发事件立即报告本单位及上级领导"""
    if not ctx.args:
        return Reply.of("duty/usage.txt.j2", command="紧急")
    result = await ctx.db.run(_urgent, who=ctx.identity, unit_id=ctx.unit_id,
                              text=ctx.args[:MAX_NOTE], now=ctx.now, key=msg.dedupe_key,
                              notices=ctx.services["notices"])
    return Reply.of("duty/urgent_sent.txt.j2", **result)


def _urgent(*, session: Session, who: Identity, unit_id: int, text: str, now: datetime,
            key: str, notices: Notices) -> dict:
    units = unit_chain(session=session, unit_id=unit_id)
    shift = duty.current_shift(session=session, unit_id=unit_id, now=now)
    to: list[str] = []
    for userid in (userids_with_roles(session=session, unit_id=unit_id,
                                      roles={Role.LEADER, Role.DEPUTY})
                   + leader_on_duty(session, shift)
                   + supervisors(session, units, include_own=False)):
        if userid != who.userid and userid not in to:
            to.append(userid)
    notices.text(session=session, template="duty/urgent_alert.txt.j2",
                 key=f"duty-urgent:{key}", to=to, now=now, urgent=True, unit=units[0].name,
                 reporter=who.name, text=text, at=now,
                 on_duty=facts(session, shift) if shift else None)
    names = session.exec(select(Person.name).where(Person.userid.in_(to))).all() if to else []
    return {"count": len(to), "names": sorted(names), "unit": units[0].name}
