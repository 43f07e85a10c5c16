"""检查情况: who in the sender's scope has led too few inspections this half month (or the last:
`检查情况 上期`), and how many visits came from above."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from models import inspection as insp
from models.org import LEADERS, Role, unit_and_descendants

router = Router("inspection_view")
PREVIOUS = {"上期", "上个半月", "上半月"}


@router.command("检查情况", roles=LEADERS)
async def status(msg: Incoming, ctx: Ctx) -> Reply:
    """检查情况 [上期] —— 查看本单位及下属单位负责人带队检查的次数和未达要求的人"""
    today = ctx.local_now.date()
    current = ctx.args not in PREVIOUS
    result = await ctx.db.run(_status, unit_id=ctx.identity.unit_id, day=today,
                              current=current, tz=ctx.tz)
    return Reply.of("inspection/status.txt.j2", scope=ctx.identity.unit_name, current=current,
                    **result)


def _status(*, session: Session, unit_id: int, day: date, current: bool, tz: ZoneInfo) -> dict:
    period = insp.period_of(day) if current else insp.previous_period(day)
    scope = [u.id for u in unit_and_descendants(session=session, unit_id=unit_id)]
    rows = insp.quota_rows(session=session, period=period, tz=tz, unit_ids=scope)
    return {"start": period.start, "end": period.end,
            "rows": [{"unit": r.unit_name, "name": r.name, "principal": r.role == Role.LEADER,
                      "done": r.done, "quota": r.quota, "short": r.short} for r in rows],
            "visits": insp.visits(session=session, period=period, tz=tz, unit_ids=scope)}
