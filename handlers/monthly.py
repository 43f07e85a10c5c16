"""月报: a unit's monthly update (seed 004 四(五)) in a conversation.

`月报 [YYYY-MM]` opens the update (by default last month's while it is open for submission,
else this month's): safebot computes the statistics table from the records and drafts
candidate items. Steps: the table (确认, or `更正 <项目> <数值>` kept beside the computed
figure) → the progress text → each drafted item (保留 / 修改 <新文字> / 删除) → the unit's own
items, 预览 and 提交 (handlers/monthly_items.py). Everything is stored as it is given, so a
restart, a timeout or 取消 loses nothing: `月报` again continues with what is left.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.config import MonthlyConfig
from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.render import Renderer
from bot.router import Router, normalise
from handlers.monthly_common import (Monthly, correct, load_view, set_progress, settings,
                                     view_of, window_of)
from handlers.monthly_items import next_candidate, shortcut
from models import monthly as mo
from models.monthly_draft import draft
from models.org import Role
from models.stats import unit_stats

router = Router("monthly")
EDITORS = {Role.LIAISON, Role.LEADER, Role.DEPUTY}
YES = {"确认", "是", "对", "好", "好的", "无误", "ok", "1"}
KEEP = {"保留", "不变", "跳过", "同上"}
REOPEN = {"修改", "重新编辑", "编辑"}
PROGRESS_MIN = 5


@router.command("月报", roles=EDITORS)
async def start(msg: Incoming, ctx: Ctx) -> Reply:
    """月报 [年-月] —— 填报本单位的安全工作月报（统计表、进展情况、工作信息和典型案例）"""
    today = ctx.local_now.date()
    try:
        month = mo.parse_month(ctx.args, today=today)
    except ValueError:
        return Reply.of("monthly/usage.txt.j2", word=ctx.args, today=today)
    if month is None:
        month = await ctx.db.run(_default_month, unit_id=ctx.unit_id, today=today,
                                 cfg=settings(ctx))
    ctx.conversation.clear()
    win = window_of(ctx, month)
    if win.first > today:
        return Reply.of("monthly/future.txt.j2", month=month)
    view = await ctx.db.run(load_view, unit_id=ctx.unit_id, month=month)
    phase = win.phase(today)
    if phase == "locked" or (view["submitted"] and phase != "open"):
        return Reply.of("monthly/locked.txt.j2", win=win, phase=phase, **view)
    if view["submitted"]:
        ctx.conversation.set(Monthly.submitted, month=month)
        return Reply.of("monthly/submitted.txt.j2", win=win, **view)
    return await open_stats(ctx, month)


def _default_month(*, session: Session, unit_id: int, today: date, cfg: MonthlyConfig) -> str:
    """Last month's while it may still be edited (to its due day, or to its lock day while it
    is not submitted), else this month's."""
    last = mo.previous_month(today)
    win = mo.window(last, due_day=cfg.due_day, late_days=cfg.late_days)
    if today <= win.due:
        return last
    row = mo.get_update(session=session, unit_id=unit_id, month=last)
    submitted = row is not None and row.status == mo.UpdateStatus.SUBMITTED
    return last if today <= win.lock and not submitted else mo.month_key(today)


async def open_stats(ctx: Ctx, month: str, *, reopen: bool = False) -> Reply:
    """Recompute the table, draft new candidates, and show the table."""
    win = window_of(ctx, month)
    view = await ctx.db.run(refresh, unit_id=ctx.unit_id, win=win, now=ctx.now,
                            today=ctx.local_now.date(), tz=ctx.tz, renderer=ctx.renderer,
                            areas=ctx.services.get("areas", {}), reopen=reopen)
    ctx.conversation.set(Monthly.stats, month=month, update=view["id"])
    return Reply.of("monthly/stats.txt.j2", win=win, note="", reopened=reopen, step="stats",
                    **view)


def refresh(*, session: Session, unit_id: int, win: mo.Window, now: datetime, today: date,
            tz: ZoneInfo, renderer: Renderer, areas: dict[str, str],
            reopen: bool = False) -> dict[str, Any]:
    row = mo.get_or_create(session=session, unit_id=unit_id, month=win.month, now=now)
    if reopen:
        mo.reopen(session=session, row=row, now=now)
    stats = unit_stats(session=session, unit_ids=[unit_id], start=win.first, end=win.last,
                       tz=tz, today=today)[unit_id]
    mo.set_computed(session=session, row=row, stats=stats, now=now)
    candidates = draft(session=session, unit_id=unit_id, first=win.first, last=win.last, tz=tz,
                       area_names=areas)
    mo.add_candidates(session=session, update_id=row.id, candidates=[
        (c.kind, c.source, renderer.render(c.template, **c.data), c.photo_ids)
        for c in candidates])
    return view_of(session, row)


@router.state(Monthly.submitted)
async def on_submitted(msg: Incoming, ctx: Ctx) -> Reply:
    """修改 sends the submitted update back to draft and shows the table; anything else leaves
    it as it is (a command is run)."""
    month = ctx.conversation.data["month"]
    text = normalise(msg.text)
    if text in REOPEN and window_of(ctx, month).phase(ctx.local_now.date()) == "open":
        return await open_stats(ctx, month, reopen=True)
    ctx.conversation.clear()
    matched = ctx.routes.match(text) if text else None
    if matched and matched[0].allowed(ctx.identity.roles):
        ctx.args = matched[1]
        return await matched[0].handler(msg, ctx)
    return Reply.of("monthly/kept_submitted.txt.j2", month=month)


@router.state(Monthly.stats)
async def on_stats(msg: Incoming, ctx: Ctx) -> Reply:
    """确认 moves on to the progress text; `更正 <项目> <数值>` keeps a correction."""
    text = normalise(msg.text)
    if text.startswith("更正"):
        return await correct(ctx, text.removeprefix("更正"))
    if text.lower() in YES:
        return await ask_progress(ctx)
    return await shortcut(msg, ctx) or await correct(ctx, "")


async def ask_progress(ctx: Ctx) -> Reply:
    view = await ctx.db.run(load_view, unit_id=ctx.unit_id, month=ctx.conversation.data["month"])
    ctx.conversation.set(Monthly.progress)
    return Reply.of("monthly/ask_progress.txt.j2", progress=view["progress"],
                    month=view["month"])


@router.state(Monthly.progress)
async def on_progress(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the progress text (保留 keeps the earlier one), then the drafted items."""
    text = msg.text.strip()
    word = normalise(text)
    if word in KEEP:
        view = await ctx.db.run(load_view, unit_id=ctx.unit_id,
                                month=ctx.conversation.data["month"])
        if view["progress"]:
            return await next_candidate(ctx)
    elif len(word) >= PROGRESS_MIN:
        await ctx.db.run(set_progress, update_id=ctx.conversation.data["update"], text=text,
                         now=ctx.now)
        return await next_candidate(ctx)
    return await shortcut(msg, ctx) or Reply.of("monthly/bad_progress.txt.j2",
                                                minimum=PROGRESS_MIN)
