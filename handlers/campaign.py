"""专项行动: `阶段` shows the running campaigns' current phase, what is due and what the unit
has handed in; `提交 <交付物名称或编号> [说明]` records a deliverable for the unit, then takes
photos and files (and further notes) until 完成."""
from __future__ import annotations

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from models import campaign as cp
from models import campaign_view
from models.org import Role

router = Router("campaign")
SUBMITTERS = {Role.LIAISON, Role.LEADER, Role.DEPUTY}
DONE = {"完成", "好了", "好", "结束", "没有了", "没有", "无", "跳过", "ok"}


class Submit(StatesGroup):
    more = State()  # photos, files or notes for the submission just recorded


@router.command("阶段", "专项行动")
async def show(msg: Incoming, ctx: Ctx) -> Reply:
    """阶段 —— 查看专项行动的当前阶段、应交材料和本单位的提交情况"""
    today = ctx.local_now.date()
    campaigns = await ctx.db.run(campaign_view.overview, unit_id=ctx.unit_id, today=today)
    if not campaigns:
        return Reply.of("campaign/none.txt.j2")
    return Reply.of("campaign/phases.txt.j2", campaigns=campaigns, today=today,
                    can_submit=ctx.identity.has_any(SUBMITTERS))


@router.command("提交", roles=SUBMITTERS)
async def submit(msg: Incoming, ctx: Ctx) -> Reply:
    """提交 <材料名称或编号> [说明] —— 提交专项行动材料（可随后发送照片或文件）"""
    today = ctx.local_now.date()
    picked = await ctx.db.run(campaign_view.pick, unit_id=ctx.unit_id, today=today,
                              args=ctx.args)
    if "open" in picked:
        return Reply.of("campaign/submit_usage.txt.j2", word=ctx.args, open=picked["open"])
    if "choices" in picked:
        return Reply.of("campaign/submit_choose.txt.j2", word=ctx.args,
                        choices=picked["choices"])
    item = picked["item"]
    submission = await ctx.db.run(cp.record_submission, deliverable_id=item["id"],
                                  unit_id=ctx.unit_id, person_id=ctx.identity.person_id,
                                  now=ctx.now, text=picked["note"][:1000],
                                  photo_ids=list(ctx.photo_ids))
    ctx.conversation.clear()
    ctx.conversation.set(Submit.more, submission=submission.id, item=item["id"])
    return Reply.of("campaign/submitted.txt.j2", item=item, note=picked["note"],
                    photos=len(ctx.photo_ids), again=item["submitted_at"] is not None)


@router.state(Submit.more)
async def on_more(msg: Incoming, ctx: Ctx) -> Reply:
    """Adds a photo, a file or a note to the submission; 完成 ends; a command moves on."""
    submission = ctx.conversation.data["submission"]
    if ctx.photo_ids or msg.kind == "file":
        held = await ctx.db.run(cp.add_to_submission, submission_id=submission,
                                photo_ids=list(ctx.photo_ids),
                                files=int(msg.kind == "file"))
        return Reply.of("campaign/submit_more.txt.j2", added="file" if msg.kind == "file"
                        else "photo", **held)
    if msg.kind != "text":
        return Reply.of("campaign/submit_more.txt.j2", added="", photos=0, files=0)
    text = normalise(msg.text)
    if text.lower() in DONE:
        ctx.conversation.clear()
        return Reply.of("campaign/submit_done.txt.j2")
    matched = ctx.routes.match(text)
    if matched and matched[0].allowed(ctx.identity.roles):  # the sender moved on
        ctx.conversation.clear()
        ctx.args = matched[1]
        return await matched[0].handler(msg, ctx)
    held = await ctx.db.run(cp.add_to_submission, submission_id=submission, text=text)
    return Reply.of("campaign/submit_more.txt.j2", added="note", **held)
