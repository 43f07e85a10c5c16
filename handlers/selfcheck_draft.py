"""The hazard draft a 自查 否 becomes: its location (unless the note had `@位置`), then 确认 /
修改 / 不上报. 确认 files a 一般 hazard with source ``self_check`` and links it to the answer in
one transaction; 不上报 keeps the 否 without a hazard. Either way the next item follows."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, normalise
from handlers.hazard_report import split_args
from handlers.selfcheck import SelfCheck, area_of, next_item, propose
from models import hazard_flow, selfcheck
from models.hazard import Level
from models.org import Identity
from models.selfcheck import Answer

router = Router("selfcheck_draft")
CONFIRM = {"确认", "提交", "是", "好", "ok"}
EDIT = {"修改", "重写"}
DROP = {"不上报", "不报", "不用上报"}


@router.state(SelfCheck.location)
async def on_location(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the draft's location and shows the draft (不上报 moves on, 修改 asks for a new
    description)."""
    data = ctx.conversation.data
    text = normalise(msg.text).lstrip("@").strip()
    if text in DROP:
        return await next_item(ctx, {**data, "i": data["i"] + 1}, ack="not_filed")
    if text in EDIT:
        ctx.conversation.set(SelfCheck.edit)
        return Reply.of("selfcheck/ask_description.txt.j2", description=data["description"])
    if not 1 <= len(text) <= 100:
        return Reply.of("selfcheck/bad_location.txt.j2")
    return propose(ctx, {**data, "location": text})


@router.state(SelfCheck.draft)
async def on_draft(msg: Incoming, ctx: Ctx) -> Reply:
    """确认 files the hazard, 不上报 skips it (both ask the next item); 修改 asks for a new
    description."""
    data = ctx.conversation.data
    text = normalise(msg.text).lower()
    if text in CONFIRM:
        number = await ctx.db.run(_file, who=ctx.identity, data=data, now=ctx.now,
                                  year=ctx.local_now.year)
        return await next_item(ctx, {**data, "i": data["i"] + 1}, ack="filed", number=number)
    if text in DROP:
        return await next_item(ctx, {**data, "i": data["i"] + 1}, ack="not_filed")
    if text in EDIT:
        ctx.conversation.set(SelfCheck.edit)
        return Reply.of("selfcheck/ask_description.txt.j2", description=data["description"])
    area = area_of(ctx, data["area"])
    return Reply.of("selfcheck/draft.txt.j2", area=area.name, index=data["i"] + 1,
                    total=len(area.items), description=data["description"],
                    location=data["location"], retry=True)


@router.state(SelfCheck.edit)
async def on_edit(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the new description (and an `@位置` in it) and shows the draft again."""
    text = normalise(msg.text)
    if not 2 <= len(text) <= 500:
        return Reply.of("selfcheck/bad_description.txt.j2")
    return propose(ctx, {**ctx.conversation.data, **split_args(text)})


def _file(*, session: Session, who: Identity, data: dict, now: datetime, year: int) -> str:
    """File the draft as a 一般 hazard and link it to the 否 answer: one transaction."""
    hazard = hazard_flow.create(session=session, unit_id=data["unit"], reporter=who,
                                description=data["description"], location=data["location"],
                                area=data["area"], level=Level.GENERAL, now=now, year=year,
                                photo_ids=[], source="self_check")
    selfcheck.record_answer(session=session, run_id=data["run"], item_id=data["item"],
                            answer=Answer.NO, note=data["note"], now=now, hazard_id=hazard.id)
    return hazard.number
