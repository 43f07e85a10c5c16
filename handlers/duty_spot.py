"""查岗: the bureau's (or a township's) presence spot check, done today by phone with a 5-minute
call-back rule. `查岗 <单位>` sends the person on duty a card; `在岗` or its button answers it;
no answer escalates (reminders/duty_spot.py). `查岗 随机 <次数>` sets a random daily schedule
for the units below; `查岗记录` lists the log with answer times."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import Notices
from handlers.hazard_review import _push_reply
from models import duty, duty_spot
from models.base import as_utc
from models.duty_facts import facts
from models.org import Identity, Person, Role, Unit, UnitKind, unit_and_descendants

router = Router("duty_spot")
SPOT_ROLES = frozenset({Role.SAFETY_OFFICER, Role.LEADER, Role.DEPUTY})
MAX_PER_DAY = 20


@router.command("查岗", roles=SPOT_ROLES)
async def spot(msg: Incoming, ctx: Ctx) -> Reply:
    """查岗 <单位> —— 抽查该单位值班人员在岗（须 5 分钟内确认）；查岗 随机 <每天次数> 设置随机查岗"""
    if ctx.identity.unit_kind not in (UnitKind.BUREAU, UnitKind.TOWNSHIP):
        return Reply.of("common/forbidden.txt.j2", command="查岗")
    words = ctx.args.split()
    if not words:
        return Reply.of("duty/spot_usage.txt.j2")
    if words[0] == "随机":
        if len(words) != 2 or not (words[1].isascii() and words[1].isdigit()) \
                or int(words[1]) > MAX_PER_DAY:  # isascii: "፩" passes isdigit(), not int()
            return Reply.of("duty/spot_usage.txt.j2")
        await ctx.db.run(duty_spot.set_plan, unit_id=ctx.identity.unit_id,
                         per_day=int(words[1]), set_by=ctx.identity.person_id, now=ctx.now)
        return Reply.of("duty/spot_plan.txt.j2", per_day=int(words[1]),
                        unit=ctx.identity.unit_name)
    result = await ctx.db.run(_ask, who=ctx.identity, target=ctx.args, now=ctx.now,
                              notices=ctx.services["notices"])
    return Reply.of("duty/spot_asked.txt.j2", **result)


def _ask(*, session: Session, who: Identity, target: str, now: datetime,
         notices: Notices) -> dict:
    below = unit_and_descendants(session=session, unit_id=who.unit_id)[1:]
    exact = [u for u in below if target in (u.code, u.name)]
    found = exact or [u for u in below if target in u.name]
    if len(found) != 1:
        return {"outcome": "choose" if found else "not_found", "target": target,
                "units": [u.name for u in found]}
    unit = found[0]
    shift = duty.current_shift(session=session, unit_id=unit.id, now=now)
    check = duty_spot.ask(session=session, unit_id=unit.id, shift_id=shift.id if shift else None,
                          person_id=shift.person_id if shift else None,
                          asked_by=who.person_id, now=now)
    if shift is None:
        return {"outcome": "no_shift", "unit": unit.name, "spot_id": check.id}
    sent = push_spot(session, notices, check, shift, now, asker=who.name)
    return {"outcome": "asked" if sent else "unreachable", "spot_id": check.id,
            "deadline": now + duty_spot.ANSWER_WITHIN, **facts(session, shift)}


def push_spot(session: Session, notices: Notices, check: duty_spot.SpotCheck,
              shift: duty.Shift, now: datetime, *, asker: str) -> int:
    """The card to the person on duty, at once even at night."""
    info = facts(session, shift)
    if not info["person_userid"]:
        return 0
    return notices.card(session=session, template="duty/spot.card.json.j2",
                        key=f"duty-spot:{check.id}", to=[info["person_userid"]], now=now,
                        urgent=True, spot_id=check.id, asker=asker,
                        deadline=now + duty_spot.ANSWER_WITHIN, **info)


@router.command("在岗", hidden=True)  # the spot-check card says so
async def present(msg: Incoming, ctx: Ctx) -> Reply:
    """在岗 —— 回复查岗，确认本人在岗"""
    result = await ctx.db.run(_answer, who=ctx.identity, spot_id=None, now=ctx.now,
                              notices=ctx.services["notices"])
    return Reply.of("duty/spot_answered.txt.j2", **result)


@router.card("duty:spot:")
async def on_card(msg: Incoming, ctx: Ctx) -> Reply:
    """The 我在岗 button of a spot-check card: duty:spot:<spot check id>."""
    raw = msg.card.event_key.rsplit(":", 1)[-1]
    result = await ctx.db.run(_answer, who=ctx.identity, now=ctx.now,
                              spot_id=int(raw) if raw.isdigit() else -1,
                              notices=ctx.services["notices"])
    reply = Reply.of("duty/spot_answered.txt.j2", **result)
    await _push_reply(ctx, reply, f"card:{msg.dedupe_key}")
    return Reply.update_button("已确认在岗" if result["outcome"] == "answered" else "查岗已结束")


def _answer(*, session: Session, who: Identity, spot_id: int | None, now: datetime,
            notices: Notices) -> dict:
    if spot_id is None:
        check = duty_spot.waiting_for(session=session, person_id=who.person_id, now=now)
    else:
        check = session.get(duty_spot.SpotCheck, spot_id)
        if check is None or check.person_id != who.person_id or check.answered_at:
            check = None
    if check is None:
        return {"outcome": "none"}
    check.answered_at = now
    seconds = int((now - as_utc(check.asked_at)).total_seconds())
    data = {"unit": session.get(Unit, check.unit_id).name, "person": who.name,
            "asked_at": as_utc(check.asked_at), "answered_at": now, "seconds": seconds,
            "in_time": now - as_utc(check.asked_at) <= duty_spot.ANSWER_WITHIN}
    asker = session.get(Person, check.asked_by) if check.asked_by else None
    if asker is not None and asker.userid:
        notices.text(session=session, template="duty/spot_result.txt.j2",
                     key=f"duty-spot-answer:{check.id}", to=[asker.userid], now=now, **data)
    return {"outcome": "answered", **data}


@router.command("查岗记录", roles=SPOT_ROLES)
async def spot_log(msg: Incoming, ctx: Ctx) -> Reply:
    """查岗记录 —— 最近的查岗及应答时间"""
    rows = await ctx.db.run(_log, unit_id=ctx.unit_id)
    return Reply.of("duty/spot_log.txt.j2", rows=rows)


def _log(*, session: Session, unit_id: int) -> list[dict]:
    units = {u.id: u.name for u in unit_and_descendants(session=session, unit_id=unit_id)}
    rows = []
    for check in duty_spot.recent(session=session, unit_ids=list(units)):
        person = session.get(Person, check.person_id) if check.person_id else None
        asker = session.get(Person, check.asked_by) if check.asked_by else None
        answered = as_utc(check.answered_at)
        rows.append({"unit": units[check.unit_id], "asked_at": as_utc(check.asked_at),
                     "person": person.name if person else "", "asker": asker.name if asker else "",
                     "answered_at": answered, "escalation": check.escalation,
                     "seconds": int((answered - as_utc(check.asked_at)).total_seconds())
                     if answered else None})
    return rows
