"""What the 月报 handlers share: the conversation's states, the month's calendar, and the plain
data every step shows about an update."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import MonthlyConfig
from bot.context import Ctx
from bot.messages import Reply
from bot.router import State, StatesGroup, normalise
from models import monthly as mo
from models.org import Unit


class Monthly(StatesGroup):
    submitted = State()  # a submitted update on show: 修改 reopens it
    stats = State()      # the table: 确认, or 更正 <项目> <数值>
    progress = State()   # the progress text (保留 keeps the one written before)
    candidate = State()  # one drafted item: 保留 / 修改 <新文字> / 删除
    items = State()      # 信息 / 案例 / photos / 删除 / 预览 / 提交


def settings(ctx: Ctx) -> MonthlyConfig:
    return ctx.services.get("monthly") or MonthlyConfig()


def window_of(ctx: Ctx, month: str) -> mo.Window:
    cfg = settings(ctx)
    return mo.window(month, due_day=cfg.due_day, late_days=cfg.late_days)


def load_view(*, session: Session, unit_id: int, month: str) -> dict[str, Any]:
    row = mo.get_update(session=session, unit_id=unit_id, month=month)
    if row is None:
        unit = session.get(Unit, unit_id)
        return {"id": None, "unit": unit.name, "month": month, "submitted": False,
                "late": False, "submitted_at": None}
    return view_of(session, row)


def view_of(session: Session, row: mo.MonthlyUpdate) -> dict[str, Any]:
    """Everything the templates show about an update, as plain data."""
    kept = mo.items(session=session, update_id=row.id)
    work = [_item(i) for i in kept if i.kind == mo.ItemKind.WORK_INFO]
    cases = [_item(i) for i in kept if i.kind == mo.ItemKind.CASE]
    return {"id": row.id, "unit": session.get(Unit, row.unit_id).name, "month": row.month,
            "submitted": row.status == mo.UpdateStatus.SUBMITTED, "late": row.late,
            "submitted_at": row.submitted_at, "figures": mo.figures(row),
            "progress": row.progress, "work": work, "cases": cases,
            "missing": mo.missing(row=row, kept=kept),
            "pending": len(mo.items(session=session, update_id=row.id, kept=None))}


def _item(item: mo.WorkItem) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "photos": len(item.photo_ids),
            "own": item.source == mo.OWN, "edited": item.edited}


def set_progress(*, session: Session, update_id: int, text: str, now: datetime) -> None:
    row = session.get(mo.MonthlyUpdate, update_id)
    row.progress, row.updated_at = text[:mo.PROGRESS_MAX], now


_CORRECTION = re.compile(r"^(\D+?)\s*(\d+(?:\.\d+)?%?|撤销|恢复)$")
UNDO = ("撤销", "恢复")


def parse_correction(text: str) -> tuple[str, float | None] | None:
    """`整改率 80%` → (rectification_rate, 0.8); `已整改 5` → (rectified, 5); `<项目> 撤销` →
    (field, None). None when the words name no field or the value does not fit it (a count is
    a whole number, a rate a percentage 0..100)."""
    match = _CORRECTION.match(normalise(text))
    field = mo.field_of(match.group(1).strip()) if match else None
    if field is None:
        return None
    value = match.group(2)
    if value in UNDO:
        return field, None
    if field in mo.RATE_FIELDS:
        percent = float(value.removesuffix("%"))
        return (field, round(percent / 100, 4)) if percent <= 100 else None
    return (field, int(value)) if value.isdigit() else None


async def correct(ctx: Ctx, args: str, *, step: str = "stats") -> Reply:
    """Store a 更正 and show the table again, with the correction beside the computed value."""
    data = ctx.conversation.data
    win = window_of(ctx, data["month"])
    parsed = parse_correction(normalise(args))
    if parsed is None:
        view = await ctx.db.run(load_view, unit_id=ctx.unit_id, month=data["month"])
        return Reply.of("monthly/stats.txt.j2", win=win, note="bad_correction", reopened=False,
                        step=step, **view)
    view = await ctx.db.run(_correct, update_id=data["update"], field=parsed[0],
                            value=parsed[1], now=ctx.now)
    return Reply.of("monthly/stats.txt.j2", win=win, note="corrected", reopened=False,
                    step=step, **view)


def _correct(*, session: Session, update_id: int, field: str, value: float | None,
             now: datetime) -> dict[str, Any]:
    row = session.get(mo.MonthlyUpdate, update_id)
    mo.set_correction(session=session, row=row, field=field, value=value, now=now)
    return view_of(session, row)
