"""月报, second half: the drafted items one by one (保留 / 修改 <新文字> / 删除 / 全部保留), then
the unit's own (`信息 <文字>`, `案例 <文字>` and a photo), `删除 信息2`, `进展 <文字>`,
`更正 <项目> <数值>`, `预览` and `提交`. 预览 and 提交 work at every step.

提交 checks seed 004's minimum (at least 3 工作信息 and 1 典型案例 a month, and the progress
text); what is missing is said and the draft stays as it is. After the due day a submission
is marked late; after the lock day nothing changes any more.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, normalise
from handlers.monthly_common import (Monthly, correct, load_view, set_progress, view_of,
                                     window_of)
from models import monthly as mo
from models.stats import unit_stats

router = Router("monthly_items")
KEEP = {"保留", "是", "好", "好的", "ok", "1"}
DROP = {"删除", "删掉", "不要", "去掉", "2"}
KEEP_ALL = {"全部保留", "都保留"}
PREVIEW = {"预览", "查看"}
SUBMIT = {"提交", "确认提交"}
EDIT = "修改"
_NEW_ITEM = re.compile(r"^(工作信息|信息|典型案例|案例)[\s:：]*(.*)$", re.S)
_DELETE = re.compile(r"^删除\s*(信息|案例)\s*(\d+)$")
KINDS = {"信息": mo.ItemKind.WORK_INFO, "工作信息": mo.ItemKind.WORK_INFO,
         "案例": mo.ItemKind.CASE, "典型案例": mo.ItemKind.CASE}
TEXT_MIN = 5


async def shortcut(msg: Incoming, ctx: Ctx) -> Reply | None:
    """预览 and 提交, understood at every step; another command leaves the conversation (the
    draft is stored already) and runs. None: the words mean nothing here."""
    word = normalise(msg.text)
    if word in PREVIEW:
        view = await ctx.db.run(load_view, unit_id=ctx.unit_id,
                                month=ctx.conversation.data["month"])
        return Reply.of("monthly/preview.txt.j2", win=window_of(ctx, view["month"]), **view)
    if word in SUBMIT:
        return await submit(ctx)
    matched = ctx.routes.match(word) if word else None
    if matched and matched[0].allowed(ctx.identity.roles):
        ctx.conversation.clear()
        ctx.args = matched[1]
        return await matched[0].handler(msg, ctx)
    return None


async def next_candidate(ctx: Ctx, ack: str = "") -> Reply:
    """Show the next drafted item not decided yet, or, when none is left, the last step."""
    data = ctx.conversation.data
    found = await ctx.db.run(_pending, update_id=data["update"])
    if found is None:
        ctx.conversation.set(Monthly.items)
        view = await ctx.db.run(load_view, unit_id=ctx.unit_id, month=data["month"])
        return Reply.of("monthly/items.txt.j2", ack=ack, **view)
    ctx.conversation.set(Monthly.candidate, item=found["id"])
    return Reply.of("monthly/candidate.txt.j2", ack=ack, **found)


def _pending(*, session: Session, update_id: int) -> dict[str, Any] | None:
    waiting = mo.items(session=session, update_id=update_id, kept=None)
    if not waiting:
        return None
    drafted = [i for i in mo.items(session=session, update_id=update_id, any_decision=True)
               if i.source != mo.OWN]
    item = waiting[0]
    return {"id": item.id, "kind": item.kind, "text": item.text, "photos": len(item.photo_ids),
            "index": drafted.index(item) + 1 if item in drafted else 1, "total": len(drafted)}


@router.state(Monthly.candidate)
async def on_candidate(msg: Incoming, ctx: Ctx) -> Reply:
    """保留 / 修改 <新文字> / 删除 the drafted item on show (全部保留: every one left), then the
    next one."""
    text = msg.text.strip()
    word = normalise(text)
    item_id = ctx.conversation.data["item"]
    if ctx.photo_ids and not word:  # a photo for the item on show
        await ctx.db.run(mo.add_photos, item_id=item_id, photo_ids=list(ctx.photo_ids))
        shown = await ctx.db.run(_pending, update_id=ctx.conversation.data["update"])
        return Reply.of("monthly/candidate.txt.j2", ack="photo", **shown)
    if word in KEEP_ALL:
        await ctx.db.run(_keep_all, update_id=ctx.conversation.data["update"])
        return await next_candidate(ctx, ack="kept_all")
    if word.startswith(EDIT):
        new = text[len(EDIT):].strip(" :：\n")
        if len(normalise(new)) < TEXT_MIN:
            return Reply.of("monthly/bad_edit.txt.j2", minimum=TEXT_MIN)
        await ctx.db.run(mo.decide, item_id=item_id, kept=True, text=new)
        return await next_candidate(ctx, ack="edited")
    if word in KEEP or word in DROP:
        await ctx.db.run(mo.decide, item_id=item_id, kept=word in KEEP)
        return await next_candidate(ctx, ack="kept" if word in KEEP else "dropped")
    found = await shortcut(msg, ctx)
    if found:
        return found
    shown = await ctx.db.run(_pending, update_id=ctx.conversation.data["update"])
    return Reply.of("monthly/candidate.txt.j2", ack="unclear", **shown)


def _keep_all(*, session: Session, update_id: int) -> None:
    for item in mo.items(session=session, update_id=update_id, kept=None):
        mo.decide(session=session, item_id=item.id, kept=True)


@router.state(Monthly.items)
async def on_items(msg: Incoming, ctx: Ctx) -> Reply:
    """Adds the unit's own item (and photos to the last one), drops one, changes the progress
    text or a figure; 预览 / 提交 end it."""
    data = ctx.conversation.data
    text = msg.text.strip()
    word = normalise(text)
    new = _NEW_ITEM.match(text) if text else None
    if new:
        body = new.group(2).strip()
        if len(normalise(body)) < TEXT_MIN:
            return Reply.of("monthly/bad_item.txt.j2", minimum=TEXT_MIN)
        item = await ctx.db.run(mo.add_item, update_id=data["update"],
                                kind=KINDS[new.group(1)], text=body, photo_ids=list(ctx.photo_ids))
        ctx.conversation.update(last=item.id)
        return await _items(ctx, ack=f"added_{item.kind}", photos=len(ctx.photo_ids))
    if ctx.photo_ids:
        if not data.get("last"):
            return await _items(ctx, ack="photo_first")
        item = await ctx.db.run(mo.add_photos, item_id=data["last"], photo_ids=list(ctx.photo_ids))
        return await _items(ctx, ack="photo", photos=len(item.photo_ids))
    dropped = _DELETE.match(word)
    if dropped:
        ok = await ctx.db.run(_drop_nth, update_id=data["update"], kind=KINDS[dropped.group(1)],
                              n=int(dropped.group(2)))
        return await _items(ctx, ack="deleted" if ok else "no_such_item")
    if word.startswith("进展") and len(normalise(text[2:])) >= TEXT_MIN:
        await ctx.db.run(set_progress, update_id=data["update"],
                         text=text[2:].strip(" :：\n"), now=ctx.now)
        return await _items(ctx, ack="progress")
    if word.startswith("更正"):
        return await correct(ctx, word.removeprefix("更正"), step="items")
    return await shortcut(msg, ctx) or await _items(ctx, ack="unclear")


async def _items(ctx: Ctx, *, ack: str, photos: int = 0) -> Reply:
    view = await ctx.db.run(load_view, unit_id=ctx.unit_id, month=ctx.conversation.data["month"])
    return Reply.of("monthly/items.txt.j2", ack=ack, added_photos=photos, **view)


def _drop_nth(*, session: Session, update_id: int, kind: str, n: int) -> bool:
    kept = [i for i in mo.items(session=session, update_id=update_id) if i.kind == kind]
    if not 1 <= n <= len(kept):
        return False
    mo.decide(session=session, item_id=kept[n - 1].id, kept=False)
    return True


async def submit(ctx: Ctx) -> Reply:
    """Validate and submit; what is missing keeps the draft and the conversation."""
    data = ctx.conversation.data
    win = window_of(ctx, data["month"])
    result = await ctx.db.run(_submit, update_id=data["update"], win=win, now=ctx.now,
                              today=ctx.local_now.date(), tz=ctx.tz,
                              person_id=ctx.identity.person_id)
    outcome = result.pop("outcome")
    if outcome in ("done", "locked", "already"):
        ctx.conversation.clear()
    elif outcome == "missing":
        ctx.conversation.set(Monthly.items)
    return Reply.of(f"monthly/submit_{outcome}.txt.j2", win=win, **result)


def _submit(*, session: Session, update_id: int, win: mo.Window, now: datetime, today: date,
            tz: ZoneInfo, person_id: int) -> dict[str, Any]:
    row = session.get(mo.MonthlyUpdate, update_id)
    view = view_of(session, row)
    if win.phase(today) == "locked":
        return {"outcome": "locked", **view}
    if row.status == mo.UpdateStatus.SUBMITTED:
        return {"outcome": "already", **view}
    if today < win.last:
        return {"outcome": "not_yet", **view}
    stats = unit_stats(session=session, unit_ids=[row.unit_id], start=win.first, end=win.last,
                       tz=tz, today=today)[row.unit_id]
    mo.set_computed(session=session, row=row, stats=stats, now=now)
    if view["missing"]:
        return {"outcome": "missing", **view}
    mo.submit(session=session, row=row, person_id=person_id, now=now, today=today, win=win)
    return {"outcome": "done", **view_of(session, row)}
