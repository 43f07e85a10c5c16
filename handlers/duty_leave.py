"""请假 <从> <到>: record the sender's leave; any roster that puts them on duty (or as leader on
duty) in those days is flagged to them and to the roster's keepers at once."""
from __future__ import annotations

import re
from datetime import date, datetime

from sqlmodel import Session

from bot.context import Ctx
from bot.dates import DateParseError, parse_date
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import Notices
from models import duty
from models.duty_facts import facts, roster_keepers
from models.org import Identity

router = Router("duty_leave")
RANGE_SEPARATORS = re.compile(r"\s+|至|到|~")
MAX_LEAVE_DAYS = 366


@router.command("请假", hidden=True)  # 签到's help line names it
async def leave(msg: Incoming, ctx: Ctx) -> Reply:
    """请假 <从> [到] —— 登记请假，如：请假 12月1日 12月3日（与值班表冲突会提醒排班人）"""
    words = [w for w in RANGE_SEPARATORS.split(ctx.args) if w]
    if not 1 <= len(words) <= 2:
        return Reply.of("duty/leave_usage.txt.j2", error="", text="")
    today = ctx.local_now.date()
    try:
        first, last = (parse_date(w, today=today, calendar=ctx.services["calendar"])
                       for w in (words[0], words[-1]))
    except DateParseError as exc:
        return Reply.of("duty/leave_usage.txt.j2", error=exc.reason, text=exc.text)
    if last < first or (last - first).days >= MAX_LEAVE_DAYS:
        return Reply.of("duty/leave_usage.txt.j2", error="order", text=ctx.args)
    result = await ctx.db.run(_record, who=ctx.identity, first=first, last=last, now=ctx.now,
                              notices=ctx.services["notices"])
    return Reply.of("duty/leave_saved.txt.j2", **result)


def _record(*, session: Session, who: Identity, first: date, last: date, now: datetime,
            notices: Notices) -> dict:
    leave = duty.add_leave(session=session, person_id=who.person_id, start=first, end=last,
                           now=now)
    clashes = [facts(session, s) for s in duty.shifts_with(session=session,
                                                           person_id=who.person_id,
                                                           first=first, last=last)]
    for unit_code in dict.fromkeys(c["unit_code"] for c in clashes):
        mine = [c for c in clashes if c["unit_code"] == unit_code]
        keepers = [u for u in roster_keepers(session, mine[0]["unit_id"]) if u != who.userid]
        notices.text(session=session, template="duty/leave_conflict.txt.j2",
                     key=f"duty-leave:{leave.id}:{unit_code}", to=keepers, now=now,
                     name=who.name, first=first, last=last, clashes=mine)
    return {"first": first, "last": last, "clashes": clashes}
