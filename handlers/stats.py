"""What leaders see in chat: `统计` (their scope's numbers), `月报情况` (who has submitted the
monthly update, who is late) and `看板` (a signed link to the read-only dashboard).

The scope is the sender's unit and every unit below it: a school, a township, the district.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.ledger_export import PeriodError, parse_period
from models import monthly as mu
from models.leader_monthly import Calendar, month_status
from models.org import LEADERS, unit_and_descendants
from models.scope_report import report

router = Router("stats")
MONTH = re.compile(r"^(\d{4})\s*(?:-|年)\s*(\d{1,2})\s*月?$")


@router.command("统计", roles=LEADERS)
async def stats(msg: Incoming, ctx: Ctx) -> Reply:
    """统计 [本月|上月|今年|日期] —— 本单位及下属单位的隐患统计：等级、领域、状态、整改率、逾期"""
    today = ctx.local_now.date()
    try:
        start, end = parse_period(ctx.args, today=today)
    except PeriodError as exc:
        return Reply.of("stats/usage.txt.j2", reason=exc.reason, today=today)
    data = await ctx.db.run(report, unit_id=ctx.identity.unit_id, start=start, end=end,
                            today=today, tz=ctx.tz, areas=ctx.services["areas"])
    return Reply.of("stats/summary.txt.j2", **data)


def parse_month(text: str, *, today: date) -> str | None:
    """``""``: the update due this month (last month's); 本月/上月; ``2026-10``, ``2026年10月``."""
    text = unicodedata.normalize("NFKC", text).strip()
    if text in ("", "上月"):
        return mu.previous_month(today)
    if text == "本月":
        return mu.month_key(today)
    match = MONTH.match(text)
    if match and 1 <= int(match.group(2)) <= 12:
        return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"
    return None


@router.command("月报情况", roles=LEADERS)
async def monthly_status(msg: Incoming, ctx: Ctx) -> Reply:
    """月报情况 [2026-10] —— 下属单位月报的提交情况：已交、迟交、未交"""
    today = ctx.local_now.date()
    month = parse_month(ctx.args, today=today)
    if month is None:
        return Reply.of("stats/monthly_usage.txt.j2", today=today)
    settings = ctx.services["monthly"]
    data = await ctx.db.run(_monthly, unit_id=ctx.identity.unit_id, today=today, month=month,
                            cal=Calendar(settings.due_day, settings.late_days))
    return Reply.of("stats/monthly.txt.j2", scope=ctx.identity.unit_name, today=today, **data)


def _monthly(*, session: Session, unit_id: int, today: date, month: str,
             cal: Calendar) -> dict:
    ids = [u.id for u in unit_and_descendants(session=session, unit_id=unit_id)]
    return month_status(session=session, unit_ids=ids, today=today, cal=cal, month=month)


@router.command("看板", roles=LEADERS)
async def dashboard(msg: Incoming, ctx: Ctx) -> Reply:
    """看板 —— 获取数据看板的链接（只读，24 小时内有效，只在单聊中发送）"""
    if msg.chat_type != "single":
        # anyone in the group could open a link posted there: links go 1:1 only
        return Reply.of("stats/dashboard_private.txt.j2")
    links = ctx.services.get("dashboard_links")
    if links is None:
        return Reply.of("stats/dashboard_off.txt.j2")
    url, expires = links.url(person_id=ctx.identity.person_id, unit_id=ctx.identity.unit_id,
                             now=ctx.now)
    return Reply.of("stats/dashboard_link.txt.j2", url=url, expires=expires,
                    unit=ctx.identity.unit_name)
