"""The bureau's grading of schools and kindergartens (分类分级): `分级` shows the ranking with the
reasons and where the next spot checks (抽查) should go; `通报` publishes the list of units
that fell short to the units concerned (seed 000: 对开展自查自报工作不力的学校给予通报批评).
The rules are in ``models/grading.py``.

`通报` first shows what would be sent; `通报 确认` sends it. A window's notice reaches each
person once, however often it is confirmed.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import Notices
from models import grading
from models.grading_facts import collect, window_for
from models.leader_monthly import Calendar
from models.org import LEADERS, Role, Unit, UnitKind, userids_with_roles

router = Router("grading")
CONFIRM = "确认"
# who hears of a unit's 通报: its own leaders and liaisons, and its township's
UNIT_ROLES = frozenset({Role.LEADER, Role.DEPUTY, Role.LIAISON})
TOWNSHIP_ROLES = frozenset({Role.LEADER, Role.SAFETY_OFFICER})


def _calendar(ctx: Ctx) -> Calendar:
    settings = ctx.services["monthly"]
    return Calendar(settings.due_day, settings.late_days)


@router.command("分级", roles=LEADERS)
async def ranking(msg: Incoming, ctx: Ctx) -> Reply:
    """分级 [近三月|上月|本月] —— 教育局：各校分级评定、原因和下一步抽查建议"""
    if ctx.identity.unit_kind != UnitKind.BUREAU:
        return Reply.of("stats/bureau_only.txt.j2", command="分级")
    today = ctx.local_now.date()
    window = window_for(ctx.args, today=today)
    if window is None:
        return Reply.of("stats/grading_usage.txt.j2", command="分级")
    grades = await ctx.db.run(_grades, unit_id=ctx.identity.unit_id, window=window,
                              today=today, tz=ctx.tz, cal=_calendar(ctx))
    return Reply.of("stats/grading.txt.j2", window=window, grades=grades, today=today,
                    spot=grading.spot_checks(grades, today=today, window=window),
                    counts={g: sum(x.grade == g for x in grades) for g in "ABCD"})


def _grades(*, session: Session, unit_id: int, window: grading.Window, today: date,
            tz: ZoneInfo, cal: Calendar) -> list[grading.Grade]:
    records = collect(session=session, unit_id=unit_id, window=window, today=today, tz=tz,
                      cal=cal)
    return grading.rank(records, window)


@router.command("通报", roles=LEADERS)
async def publish(msg: Incoming, ctx: Ctx) -> Reply:
    """通报 [确认] —— 教育局：把未达标单位名单通报给相关单位（先预览，「通报 确认」发送）"""
    if ctx.identity.unit_kind != UnitKind.BUREAU:
        return Reply.of("stats/bureau_only.txt.j2", command="通报")
    today = ctx.local_now.date()
    words = ctx.args.split()
    confirmed = CONFIRM in words
    window = window_for(" ".join(w for w in words if w != CONFIRM), today=today)
    if window is None:
        return Reply.of("stats/grading_usage.txt.j2", command="通报")
    result = await ctx.db.run(_publish, unit_id=ctx.identity.unit_id, window=window,
                              today=today, tz=ctx.tz, cal=_calendar(ctx), now=ctx.now,
                              send=confirmed, notices=ctx.services["notices"])
    if confirmed:
        ctx.services["wake"]()
    return Reply.of("stats/notice_done.txt.j2" if confirmed else "stats/notice_preview.txt.j2",
                    window=window, **result)


def _publish(*, session: Session, unit_id: int, window: grading.Window, today: date,
             tz: ZoneInfo, cal: Calendar, now: datetime, send: bool,
             notices: Notices) -> dict:
    grades = _grades(session=session, unit_id=unit_id, window=window, today=today, tz=tz,
                     cal=cal)
    short = [g for g in grades if g.falls_short]
    recipients = _recipients(session, [g.record.unit_id for g in short])
    sent = 0
    if send and short:
        sent = notices.text(session=session, template="stats/notice.txt.j2",
                            key=f"notice:{window.start}:{window.end}", to=recipients, now=now,
                            window=window, short=short)
    return {"short": short, "recipients": len(recipients), "sent": sent,
            "graded": len(grades)}


def _recipients(session: Session, unit_ids: list[int]) -> list[str]:
    """The leaders and liaisons of the units, and their townships' leaders and officers."""
    people: list[str] = []
    for unit_id in unit_ids:
        unit = session.get(Unit, unit_id)
        found = userids_with_roles(session=session, unit_id=unit_id, roles=UNIT_ROLES)
        parent = session.get(Unit, unit.parent_id) if unit.parent_id else None
        if parent is not None and parent.kind == UnitKind.TOWNSHIP:
            found += userids_with_roles(session=session, unit_id=parent.id,
                                        roles=TOWNSHIP_ROLES)
        people += [u for u in found if u not in people]
    return people
