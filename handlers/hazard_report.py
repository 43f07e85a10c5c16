"""上报: report a hazard in a short conversation, or in one message (`上报 描述 @位置`).

Steps: description → location → area (suggested from the words used) → level (一般/重大,
with a warning when the words match a major-hazard sign) → optional photo → confirmation.
Only what is missing is asked. A major hazard is listed for supervision at once: the
principal, the township central school and the bureau's safety officers get a card.
"""
from __future__ import annotations

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from handlers.hazard_common import Notices, facts, supervisors
from models import conversation, hazard_flow
from models.conversation import Snapshot
from models.hazard import Level, by_number
from models.org import Identity, unit_chain

router = Router("hazard_report")
YES = {"是", "对", "好", "好的", "确认", "提交", "1", "y", "yes", "ok"}
SKIP = {"跳过", "无", "没有", "不用", "否", "0"}
LEVELS = {"一般": Level.GENERAL, "1": Level.GENERAL, "重大": Level.MAJOR, "2": Level.MAJOR}


class Report(StatesGroup):
    description = State()
    location = State()
    area = State()
    level = State()
    photo = State()
    confirm = State()


def split_args(args: str) -> dict[str, str]:
    """`三楼东侧消防通道堵塞 @教学楼三楼` → description and location."""
    description, _, location = args.partition("@")
    return {k: v.strip() for k, v in (("description", description), ("location", location))
            if v.strip()}


@router.command("上报", "报告隐患")
async def report(msg: Incoming, ctx: Ctx) -> Reply:
    """上报 [描述] [@位置] —— 上报安全隐患，如：上报 三楼东侧消防通道堵塞 @教学楼三楼"""
    ctx.conversation.clear()
    return ask_next(ctx, split_args(ctx.args))


def ask_next(ctx: Ctx, data: dict) -> Reply:
    """Store ``data`` and ask for the first thing still missing."""
    checklists = ctx.services["checklists"]
    if ctx.photo_ids and "photos" not in data:  # a group's text + photo (AI bot "mixed")
        data = {**data, "photos": list(ctx.photo_ids)}
    if not data.get("description"):
        ctx.conversation.set(Report.description, **data)
        return Reply.of("hazard/ask_description.txt.j2")
    if not data.get("location"):
        ctx.conversation.set(Report.location, **data)
        return Reply.of("hazard/ask_location.txt.j2", description=data["description"])
    if not data.get("area"):
        suggested = checklists.suggest_area(data["description"])
        data["suggested"] = suggested.key if suggested else ""
        ctx.conversation.set(Report.area, **data)
        return Reply.of("hazard/ask_area.txt.j2", suggested=suggested.name if suggested else "",
                        areas=[c.name for c in checklists.all()])
    if not data.get("level"):
        ctx.conversation.set(Report.level, **data)
        return Reply.of("hazard/ask_level.txt.j2",
                        signs=checklists.major_signs_in(data["description"]))
    if "photos" not in data:
        ctx.conversation.set(Report.photo, **data)
        return Reply.of("hazard/ask_photo.txt.j2")
    ctx.conversation.set(Report.confirm, **data)
    return Reply.of("hazard/confirm.txt.j2", **_summary(ctx, data))


def _summary(ctx: Ctx, data: dict) -> dict:
    names = {c.key: c.name for c in ctx.services["checklists"].all()}
    return {"description": data["description"], "location": data["location"],
            "area": names.get(data["area"], data["area"]), "level": data["level"],
            "photos": len(data["photos"])}


@router.state(Report.description)
async def on_description(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the description (and an `@位置` in it) and asks for what is missing."""
    text = normalise(msg.text)
    if not 2 <= len(text) <= 500:
        return Reply.of("hazard/bad_description.txt.j2")
    return ask_next(ctx, {**ctx.conversation.data, **split_args(text)})


@router.state(Report.location)
async def on_location(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the location and asks for the area."""
    text = normalise(msg.text).lstrip("@").strip()
    if not 1 <= len(text) <= 100:
        return Reply.of("hazard/bad_location.txt.j2")
    return ask_next(ctx, {**ctx.conversation.data, "location": text})


@router.state(Report.area)
async def on_area(msg: Incoming, ctx: Ctx) -> Reply:
    """Accepts the suggested area or a named one, then asks for the level."""
    data = ctx.conversation.data
    text = normalise(msg.text).lower()
    if text in YES and data.get("suggested"):
        return ask_next(ctx, {**data, "area": data["suggested"]})
    matches = ctx.services["checklists"].find(text) if text else []
    if len(matches) == 1:
        return ask_next(ctx, {**data, "area": matches[0].key})
    return Reply.of("hazard/bad_area.txt.j2", areas=[c.name for c in
                                                     (matches or ctx.services["checklists"].all())])


@router.state(Report.level)
async def on_level(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores 一般 or 重大 and asks for a photo."""
    level = LEVELS.get(normalise(msg.text).replace("隐患", "").replace("事故", ""))
    if level is None:
        return Reply.of("hazard/bad_level.txt.j2")
    return ask_next(ctx, {**ctx.conversation.data, "level": level.value})


@router.state(Report.photo)
async def on_photo(msg: Incoming, ctx: Ctx) -> Reply:
    """Takes a photo (image message) or 跳过, then asks to confirm."""
    if ctx.photo_ids:
        return ask_next(ctx, {**ctx.conversation.data, "photos": list(ctx.photo_ids)})
    if normalise(msg.text) in SKIP:
        return ask_next(ctx, {**ctx.conversation.data, "photos": []})
    return Reply.of("hazard/ask_photo.txt.j2")


@router.state(Report.confirm)
async def on_confirm(msg: Incoming, ctx: Ctx) -> Reply:
    """确认 files the hazard; 修改 starts over."""
    if ctx.conversation.data.get("filed"):  # an earlier 确认 filed it; its turn died after
        result = await ctx.db.run(_filed, data=ctx.conversation.data, area_names={
            c.key: c.name for c in ctx.services["checklists"].all()})
        ctx.conversation.clear()
        return Reply.of("hazard/reported.txt.j2", **result)
    text = normalise(msg.text).lower()
    if text in {"修改", "重填", "重新填写"}:
        ctx.conversation.clear()
        return ask_next(ctx, {})
    if text not in YES:
        return Reply.of("hazard/confirm.txt.j2", **_summary(ctx, ctx.conversation.data))
    data = ctx.conversation.data
    result = await ctx.db.run(_file, who=ctx.identity, unit_id=ctx.unit_id, data=data, now=ctx.now,
                              year=ctx.local_now.year, notices=ctx.services["notices"],
                              area_names={c.key: c.name for c in ctx.services["checklists"].all()},
                              conversation_key=msg.conversation_key)
    ctx.conversation.clear()
    return Reply.of("hazard/reported.txt.j2", **result)


def _file(*, session: Session, who: Identity, data: dict, now, year: int, notices: Notices,
          area_names: dict[str, str], unit_id: int | None = None,
          conversation_key: str | None = None) -> dict:
    """Create the hazard (in ``unit_id``: a bound group's unit, else the reporter's) and, for a
    major one, alert its supervisors: one transaction.

    The conversation is marked filed in that same transaction: if the turn dies before the
    dispatcher writes the conversation back (a crash, the database gone), the 确认 the user
    sends again answers with this hazard instead of filing it twice."""
    hazard = hazard_flow.create(session=session, unit_id=unit_id or who.unit_id, reporter=who,
                                description=data["description"], location=data["location"],
                                area=data["area"], level=Level(data["level"]), now=now,
                                year=year, photo_ids=data["photos"])
    info = facts(session, hazard, area_names)
    alerted: list[str] = []
    if hazard.level == Level.MAJOR:
        units = unit_chain(session=session, unit_id=hazard.unit_id)
        alerted = [u for u in supervisors(session, units, include_own=True) if u != who.userid]
        notices.card(session=session, template="hazard/major_alert.card.json.j2",
                     key=f"major:{hazard.id}", to=alerted, now=now, urgent=True, **info)
    if conversation_key is not None:
        conversation.save(session=session, key=conversation_key, now=now, snapshot=Snapshot(
            Report.confirm.name, {**data, "filed": hazard.number, "alerted": len(alerted)}))
    return {**info, "alerted": len(alerted)}


def _filed(*, session: Session, data: dict, area_names: dict[str, str]) -> dict:
    """The reply data of a hazard an earlier 确认 filed."""
    hazard = by_number(session=session, number=data["filed"])
    return {**facts(session, hazard, area_names), "alerted": data.get("alerted", 0)}
