"""稍后: hold back the routine reminders about one hazard for a few days."""
from __future__ import annotations

import re
from datetime import timedelta

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import find_visible
from models import digest
from models.hazard import split_number

router = Router("snooze")
DAYS_RE = re.compile(r"(\d{1,2})\s*(天|日)")


@router.command("稍后")
async def later(msg: Incoming, ctx: Ctx) -> Reply:
    """稍后 <隐患编号> <N天> —— 这几天不再提醒这条隐患（如：稍后 YH2026-000123 3天）"""
    number, rest = split_number(ctx.args)
    days = DAYS_RE.search(rest)
    if number is None or days is None or not 1 <= int(days.group(1)) <= 30:
        return Reply.of("reminders/snooze_usage.txt.j2")
    found = await ctx.db.run(find_visible, number=number, who=ctx.identity)
    if found is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    until = ctx.local_now.date() + timedelta(days=int(days.group(1)))
    await ctx.db.run(digest.snooze, userid=ctx.identity.userid, subject=number, until=until)
    return Reply.of("reminders/snoozed.txt.j2", number=number, until=until)
