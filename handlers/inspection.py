"""检查 / 督查 / 暗访: record an inspection and file what it found as hazards.

`检查 <内容>` — a leader's own inspection of their unit (counts toward the half-month quota).
`督查 <单位> <内容>` — a township or bureau officer's visit to a unit below them; `暗访 <单位>
<内容>` (or content starting with 暗访) marks it unannounced. Then each message is one finding
(`描述 @位置`; starting with 重大 for a major hazard), a photo goes with the finding before it,
撤回 drops the last finding, and 完成 saves the inspection and files every finding as a hazard
of the inspected unit (source ``inspection`` or ``supervisor``).
"""
from __future__ import annotations

import re

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from handlers.hazard_report import split_args
from handlers.inspection_file import file_inspection
from models import inspection as insp
from models.org import Role, UnitKind, unit_and_descendants

router = Router("inspection")
INSPECTORS = {Role.LEADER, Role.DEPUTY}
SUPERVISORS = {Role.LEADER, Role.SAFETY_OFFICER}
DONE = {"完成", "没有问题", "无问题", "没有", "无", "结束", "好了"}
UNDO = {"撤回", "删除", "删除上一条", "撤回上一条"}
MAJOR_RE = re.compile(r"^(重大隐患|重大(?=[\s:：,，]))[\s:：,，]*")  # not 「重大活动…」
MAX_FINDINGS = 30
UNANNOUNCED = "暗访"


class Inspect(StatesGroup):
    findings = State()  # one finding per message, photos, 撤回, until 完成


@router.command("检查", roles=INSPECTORS)
async def inspect(msg: Incoming, ctx: Ctx) -> Reply:
    """检查 <检查内容> —— 登记本人带队的安全检查，随后逐条回复发现的问题"""
    if not ctx.args:
        return Reply.of("inspection/usage.txt.j2", command="检查")
    return begin(ctx, unit_id=ctx.unit_id, unit_name=None, kind=insp.Kind.INSPECTION,
                 announced=True, content=ctx.args)


@router.command("督查", roles=SUPERVISORS)
async def supervise(msg: Incoming, ctx: Ctx) -> Reply:
    """督查 <单位> <内容> —— 登记对下属单位的督导检查（暗访 <单位> <内容>：不打招呼的暗访）"""
    return await _visit(ctx, command="督查", announced=True)


@router.command(UNANNOUNCED, roles=SUPERVISORS, hidden=True)
async def unannounced(msg: Incoming, ctx: Ctx) -> Reply:
    """暗访 <单位> <内容> —— 登记对下属单位的暗访暗查"""
    return await _visit(ctx, command=UNANNOUNCED, announced=False)


async def _visit(ctx: Ctx, *, command: str, announced: bool) -> Reply:
    if ctx.identity.unit_kind not in (UnitKind.TOWNSHIP, UnitKind.BUREAU):
        return Reply.of("inspection/not_above.txt.j2", command=command)
    below = await ctx.db.run(unit_and_descendants, unit_id=ctx.identity.unit_id)
    args = ctx.args
    if args.startswith(UNANNOUNCED):  # 督查 暗访 <单位> <内容>
        args, announced = args.removeprefix(UNANNOUNCED).strip(), False
    target, content = _target(below[1:], args)
    if content.startswith(UNANNOUNCED):  # 督查 <单位> 暗访 <内容>
        announced = False
    if target is None or not content:
        return Reply.of("inspection/visit_usage.txt.j2", command=command,
                        word=args.partition(" ")[0], units=[u.name for u in below[1:]][:30],
                        found=target is not None)
    return begin(ctx, unit_id=target.id, unit_name=target.name, kind=insp.Kind.SUPERVISION,
                 announced=announced, content=content)


def _target(units: list, args: str):
    """The unit ``args`` starts with (its code or name, longest first) and the rest."""
    best = None
    for unit in units:
        for word in (unit.name, unit.code):
            if args.lower().startswith(word.lower()) and (best is None or len(word) > best[1]):
                best = (unit, len(word))
    if best is None:
        return None, ""
    return best[0], args[best[1]:].strip()


def begin(ctx: Ctx, *, unit_id: int, unit_name: str | None, kind: str, announced: bool,
          content: str) -> Reply:
    """Store the inspection in the conversation and ask for the findings."""
    ctx.conversation.clear()
    ctx.conversation.set(Inspect.findings, unit=unit_id, unit_name=unit_name, kind=kind,
                         announced=announced, content=content[:500],
                         photos=list(ctx.photo_ids), findings=[])
    return Reply.of("inspection/ask_findings.txt.j2", kind=kind, unit=unit_name,
                    announced=announced, content=content[:500], photos=len(ctx.photo_ids))


@router.state(Inspect.findings)
async def on_finding(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores a finding (or a photo for the last one); 撤回 drops one; 完成 files them all."""
    data = ctx.conversation.data
    findings = data["findings"]
    if ctx.photo_ids:
        if findings:
            findings[-1]["photos"] = [*findings[-1]["photos"], *ctx.photo_ids]
        else:
            data["photos"] = [*data["photos"], *ctx.photo_ids]
        ctx.conversation.update(findings=findings, photos=data["photos"])
        return Reply.of("inspection/photo_added.txt.j2", finding=len(findings))
    text = normalise(msg.text) if msg.kind == "text" else ""
    if not text:
        return Reply.of("inspection/ask_findings.txt.j2", kind=data["kind"], again=True,
                        unit=data["unit_name"], announced=data["announced"],
                        content=data["content"], photos=len(data["photos"]))
    if text in DONE:
        result = await ctx.db.run(file_inspection, who=ctx.identity, data=data, now=ctx.now,
                                  year=ctx.local_now.year, checklists=ctx.services["checklists"],
                                  notices=ctx.services["notices"], renderer=ctx.renderer)
        ctx.conversation.clear()
        return Reply.of("inspection/saved.txt.j2", **result)
    if text in UNDO:
        dropped = findings.pop() if findings else None
        ctx.conversation.update(findings=findings)
        return Reply.of("inspection/undone.txt.j2", dropped=dropped, left=len(findings))
    finding = _finding(text)
    if not 2 <= len(finding["description"]) <= 500 or len(findings) >= MAX_FINDINGS:
        return Reply.of("inspection/bad_finding.txt.j2", full=len(findings) >= MAX_FINDINGS,
                        limit=MAX_FINDINGS)
    findings.append(finding)
    ctx.conversation.update(findings=findings)
    return Reply.of("inspection/finding_added.txt.j2", index=len(findings), **finding)


def _finding(text: str) -> dict:
    """`重大 化学品混放 @实验楼` → a major finding with its location."""
    major = MAJOR_RE.match(text)
    text = text[major.end():] if major else text
    parts = split_args(text.removeprefix("隐患").lstrip(":：，, "))
    return {"description": parts.get("description", ""), "location": parts.get("location", ""),
            "major": bool(major), "photos": []}
