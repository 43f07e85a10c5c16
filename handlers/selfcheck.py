"""自查: walk one checklist area item by item, answering 是 / 否 / 不适用 with an optional note.

The run is stored when it starts and each answer as it is given, so a restart continues at the
same item and 取消 keeps the answers (the run is marked abandoned). A 否 becomes a hazard
draft (handlers/selfcheck_draft.py); after the last item come a summary and the run finished.
"""
from __future__ import annotations

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from handlers.checklist import _pick as pick_areas
from handlers.hazard_report import split_args
from models import selfcheck
from models.checklist import Checklist
from models.selfcheck import Answer

router = Router("selfcheck")
ANSWER_WORDS = {
    "是": Answer.YES, "是的": Answer.YES, "对": Answer.YES, "对的": Answer.YES,
    "1": Answer.YES, "y": Answer.YES, "yes": Answer.YES,
    "否": Answer.NO, "不是": Answer.NO, "不对": Answer.NO, "2": Answer.NO, "n": Answer.NO,
    "no": Answer.NO,
    "不适用": Answer.NA, "无": Answer.NA, "跳过": Answer.NA, "3": Answer.NA,
}
NOTE_SEPARATORS = " ,.;:!?、。"  # after NFKC: ，；：！？ are ASCII
MAX_NOTE = 500


class SelfCheck(StatesGroup):
    item = State()      # waiting for the answer to item ``i``
    location = State()  # a 否: where is the problem?
    draft = State()     # a 否: 确认 / 修改 / 不上报 the hazard draft
    edit = State()      # 修改: a new description for the draft




def parse_answer(text: str) -> tuple[Answer, str] | None:
    """`否 东侧通道堆放杂物` → (否, the note); the longest answer word the text starts with."""
    text = normalise(text)
    for word in sorted(ANSWER_WORDS, key=len, reverse=True):
        rest = text[len(word):]
        if not text.lower().startswith(word) or (word.isascii() and rest[:1].isascii()
                                                 and rest[:1].isalnum()):
            continue
        return ANSWER_WORDS[word], rest.lstrip(NOTE_SEPARATORS).strip()
    return None


def area_of(ctx: Ctx, key: str) -> Checklist:
    return next(a for a in ctx.services["checklists"].all() if a.key == key)


@router.command("自查")
async def start(msg: Incoming, ctx: Ctx) -> Reply:
    """自查 <领域> —— 按排查清单逐项自查（如：自查 消防）"""
    checklists = ctx.services["checklists"]
    if not ctx.args:
        return Reply.of("selfcheck/areas.txt.j2", areas=checklists.all())
    found = pick_areas(checklists, ctx.args)
    if len(found) > 1:
        return Reply.of("selfcheck/choose.txt.j2", word=ctx.args, areas=found)
    if not found:
        return Reply.of("selfcheck/not_found.txt.j2", word=ctx.args, areas=checklists.all())
    unit_id = ctx.identity.unit_id  # the run's hazards are filed for this unit too
    run = await ctx.db.run(selfcheck.start_run, unit_id=unit_id,
                           person_id=ctx.identity.person_id, area=found[0].key, now=ctx.now)
    return await next_item(ctx, {"run": run.id, "unit": unit_id, "area": found[0].key, "i": 0},
                           ack="started")


async def next_item(ctx: Ctx, data: dict, *, ack: str, number: str = "") -> Reply:
    """Ask item ``data["i"]`` (forgetting any draft), or finish the run after the last one."""
    area = area_of(ctx, data["area"])
    if data["i"] >= len(area.items):
        await ctx.db.run(selfcheck.finish_run, run_id=data["run"], now=ctx.now)
        summary = await ctx.db.run(selfcheck.summarise_run, run_id=data["run"])
        ctx.conversation.clear()
        return Reply.of("selfcheck/summary.txt.j2", area=area.name, total=len(area.items),
                        ack=ack, number=number, **summary)
    ctx.conversation.clear()
    ctx.conversation.set(SelfCheck.item, run=data["run"], unit=data["unit"], area=area.key,
                         i=data["i"])
    return Reply.of("selfcheck/item.txt.j2", area=area.name, index=data["i"] + 1,
                    total=len(area.items), text=area.items[data["i"]].text, ack=ack,
                    number=number)


def propose(ctx: Ctx, data: dict) -> Reply:
    """Store the draft; ask for its location if it has none, else show it for 确认."""
    area = area_of(ctx, data["area"])
    facts = {"area": area.name, "index": data["i"] + 1, "total": len(area.items),
             "description": data["description"]}
    if not data.get("location"):
        ctx.conversation.set(SelfCheck.location, **data)
        return Reply.of("selfcheck/ask_location.txt.j2", **facts)
    ctx.conversation.set(SelfCheck.draft, **data)
    return Reply.of("selfcheck/draft.txt.j2", location=data["location"], retry=False, **facts)


@router.state(SelfCheck.item)
async def on_item(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores the answer to the item; asks the next item, or for a 否 proposes a hazard draft."""
    data = ctx.conversation.data
    area = area_of(ctx, data["area"])
    item = area.items[data["i"]]
    parsed = parse_answer(msg.text)
    if parsed is None or len(parsed[1]) > MAX_NOTE:
        return Reply.of("selfcheck/item.txt.j2", area=area.name, index=data["i"] + 1,
                        total=len(area.items), text=item.text, number="",
                        ack="too_long" if parsed else "retry")
    answer, note = parsed
    await ctx.db.run(selfcheck.record_answer, run_id=data["run"], item_id=item.id,
                     answer=answer, note=note, now=ctx.now)
    if answer != Answer.NO:
        return await next_item(ctx, {**data, "i": data["i"] + 1}, ack=answer.value)
    draft = split_args(note)
    description = draft.get("description") or ctx.renderer.render(
        "selfcheck/draft_description.txt.j2", text=item.text)
    return propose(ctx, {**data, "item": item.id, "note": note, "description": description,
                         "location": draft.get("location", "")})


@router.on_cancel(SelfCheck)
async def on_cancel(msg: Incoming, ctx: Ctx) -> Reply:
    """取消 in a self-check marks the run abandoned; the answers so far are kept."""
    data = ctx.conversation.data
    kept = await ctx.db.run(selfcheck.abandon_run, run_id=data["run"])
    area = area_of(ctx, data["area"])
    return Reply.of("selfcheck/cancelled.txt.j2", area=area.name, kept=kept,
                    total=len(area.items))
