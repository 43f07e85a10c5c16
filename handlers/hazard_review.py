"""整改完成 and 复查: the end of the closed loop (检查、整改、销号).

`整改完成 YH…` (with an optional photo) marks the hazard rectified and asks its reviewers with a
card (通过 / 不通过 buttons). `复查 YH… 通过` closes it (销号); `复查 YH… 不通过 <原因>` sends it
back with the reason. A general hazard is reviewed by the school's leaders or above, a major one
only above the school, and nobody reviews their own rectification.
"""
from __future__ import annotations

from sqlmodel import Session

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from handlers.hazard_common import Notices, facts, find_visible, supervisors
from handlers.hazard_report import SKIP
from handlers.hazard_view import show
from models import hazard_flow, outbox
from models.hazard import Level, Status, history, photos, split_number
from models.hazard_access import UNIT_LEADERS, can_review, can_work_on
from models.org import Identity, Person, userids_with_roles

router = Router("hazard_review")


class Rectified(StatesGroup):
    photo = State()


class ReviewFail(StatesGroup):
    reason = State()


@router.command("整改完成")
async def rectified(msg: Incoming, ctx: Ctx) -> Reply:
    """整改完成 <隐患编号> —— 标记整改完成并提请复查（可附整改后照片）"""
    number, _ = split_number(ctx.args)
    if number is None:
        return Reply.of("hazard/usage.txt.j2", command="整改完成")
    found = await ctx.db.run(find_visible, number=number, who=ctx.identity)
    if found is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    hazard = found.hazard
    if not (can_work_on(ctx.identity, hazard) or hazard.responsible_userid == ctx.identity.userid):
        return Reply.of("hazard/forbidden.txt.j2", number=number, action="整改完成")
    if hazard.status != Status.PLANNED:
        reason = "no_plan" if hazard.status == Status.REPORTED else "wrong_status"
        return Reply.of("hazard/refused.txt.j2", number=number, reason=reason,
                        status=hazard.status)
    ctx.conversation.set(Rectified.photo, number=number)
    return Reply.of("hazard/ask_after_photo.txt.j2", number=number)


@router.state(Rectified.photo)
async def on_after_photo(msg: Incoming, ctx: Ctx) -> Reply:
    """Takes the after-photo (or 跳过), marks the hazard rectified and asks for review."""
    if not ctx.photo_ids and normalise(msg.text) not in SKIP:
        return Reply.of("hazard/ask_after_photo.txt.j2", number=ctx.conversation.data["number"])
    number = ctx.conversation.data["number"]
    ctx.conversation.clear()
    result = await ctx.db.run(_mark_rectified, who=ctx.identity, number=number, now=ctx.now,
                              photo_ids=list(ctx.photo_ids), notices=ctx.services["notices"],
                              area_names=ctx.services["areas"])
    return Reply.of("hazard/rectified.txt.j2", **result)


def _mark_rectified(*, session: Session, who: Identity, number: str, now, photo_ids: list[int],
                    notices: Notices, area_names: dict[str, str]) -> dict:
    found = find_visible(session=session, number=number, who=who)
    hazard = found.hazard
    refusal = hazard_flow.mark_rectified(session=session, hazard=hazard, actor=who, now=now,
                                         photo_ids=photo_ids)
    info = facts(session, hazard, area_names)
    if refusal:
        return {**info, "refused": refusal.value, "reviewers": 0}
    if hazard.level == Level.MAJOR:
        reviewers = supervisors(session, found.units, include_own=False)
    else:
        reviewers = userids_with_roles(session=session, unit_id=hazard.unit_id,
                                       roles=UNIT_LEADERS)
    reviewers = [r for r in reviewers if r != who.userid]
    events = history(session=session, hazard_id=hazard.id)
    key = f"review:{hazard.id}:{len(events)}"
    times = sum(1 for e in events if e.action == "rectified")
    notices.card(session=session, template="hazard/review_request.card.json.j2", key=key,
                 to=reviewers, now=now, urgent=hazard.level == Level.MAJOR, rectifier=who.name,
                 **info)
    _send_photos(session, notices, key=key, hazard_id=hazard.id, to=reviewers, now=now,
                 info={**info, "rectifier": who.name, "times": times})
    return {**info, "refused": "", "reviewers": len(reviewers)}


def _send_photos(session: Session, notices: Notices, *, key: str, hazard_id: int,
                 to: list[str], now, info: dict) -> None:
    """The reviewer sees the scene before and after, one after the other, under a caption."""
    stages = photos(session=session, hazard_id=hazard_id)
    if not (stages["report"] or stages["rectified"]):
        return
    notices.text(session=session, template="hazard/review_photos.txt.j2", key=f"{key}:photos",
                 to=to, now=now, before=len(stages["report"]), after=len(stages["rectified"]),
                 **info)
    for stage in ("report", "rectified"):
        for photo_id in stages[stage]:
            for userid in to:
                outbox.enqueue(session=session, key=f"{key}:photo:{photo_id}:{userid}",
                               recipient=userid, msgtype="image", payload={"photo_id": photo_id},
                               now=now)


@router.command("复查")
async def review(msg: Incoming, ctx: Ctx) -> Reply:
    """复查 <隐患编号> 通过 | 不通过 <原因> —— 复查整改结果，通过即销号"""
    number, rest = split_number(ctx.args)
    if number is None:
        return Reply.of("hazard/review_usage.txt.j2")
    if rest.startswith("不通过"):
        reason = rest[len("不通过"):].strip(" ：:，,")
        if not reason:
            ctx.conversation.set(ReviewFail.reason, number=number)
            return Reply.of("hazard/ask_fail_reason.txt.j2", number=number)
        return await _review(ctx, number, passed=False, reason=reason)
    if rest.startswith("通过"):
        return await _review(ctx, number, passed=True, reason="")
    return Reply.of("hazard/review_usage.txt.j2")


@router.state(ReviewFail.reason)
async def on_fail_reason(msg: Incoming, ctx: Ctx) -> Reply:
    """Stores why the rectification failed review and sends the hazard back."""
    reason = normalise(msg.text)
    if not 2 <= len(reason) <= 300:
        return Reply.of("hazard/ask_fail_reason.txt.j2", number=ctx.conversation.data["number"])
    number = ctx.conversation.data["number"]
    ctx.conversation.clear()
    return await _review(ctx, number, passed=False, reason=reason)


async def _review(ctx: Ctx, number: str, *, passed: bool, reason: str) -> Reply:
    result = await ctx.db.run(_decide, who=ctx.identity, number=number, passed=passed,
                              reason=reason, now=ctx.now, notices=ctx.services["notices"],
                              area_names=ctx.services["areas"])
    if result is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    return Reply.of("hazard/reviewed.txt.j2", **result)


def _decide(*, session: Session, who: Identity, number: str, passed: bool, reason: str, now,
            notices: Notices, area_names: dict[str, str]) -> dict | None:
    found = find_visible(session=session, number=number, who=who)
    if found is None:
        return None
    hazard = found.hazard
    if not can_review(who, hazard, found.chain):
        return {**facts(session, hazard, area_names), "refused": "forbidden", "passed": passed}
    rectifier = session.get(Person, hazard.rectified_by) if hazard.rectified_by else None
    refusal = hazard_flow.review(session=session, hazard=hazard, actor=who, passed=passed,
                                 reason=reason, now=now)
    info = facts(session, hazard, area_names)
    if refusal is None:
        reporter = session.get(Person, hazard.reporter_id)
        told = {p for p in (reporter.userid if reporter else None, hazard.responsible_userid,
                            rectifier.userid if rectifier else None) if p and p != who.userid}
        notices.text(session=session, template="hazard/review_result.txt.j2",
                     key=f"reviewed:{hazard.id}:{now.isoformat()}", to=sorted(told), now=now,
                     passed=passed, reviewer=who.name, reason=reason, **info)
    return {**info, "refused": refusal.value if refusal else "", "passed": passed}


@router.card("hz:")
async def on_card(msg: Incoming, ctx: Ctx) -> Reply:
    """Card buttons: hz:open:<编号> pushes the details, hz:pass / hz:fail review."""
    _, action, number = (msg.card.event_key.split(":", 2) + ["", ""])[:3]
    if action == "pass":
        reply = await _review(ctx, number, passed=True, reason="")
        await _push_reply(ctx, reply, f"card:{msg.dedupe_key}")
        ok = not reply.data.get("refused") and reply.template == "hazard/reviewed.txt.j2"
        return Reply.update_button("已通过" if ok else "未能复查")
    if action == "fail":
        ctx.conversation.set(ReviewFail.reason, number=number)
        await _push_reply(ctx, Reply.of("hazard/ask_fail_reason.txt.j2", number=number),
                          f"card:{msg.dedupe_key}")
        return Reply.update_button("不通过（请回复原因）")
    ctx.args = number
    await _push_reply(ctx, await show(msg, ctx), f"card:{msg.dedupe_key}")
    return Reply.none()


async def _push_reply(ctx: Ctx, reply: Reply, key: str) -> None:
    """A card click cannot be answered with text: the answer goes out as a push."""
    text = ctx.renderer.render(reply.template, **reply.data)
    notices: Notices = ctx.services["notices"]

    def enqueue(*, session: Session) -> None:
        notices.text(session=session, template="common/late_reply.txt.j2", key=key,
                     to=[ctx.identity.userid], now=ctx.now, text=text)
    await ctx.db.run(enqueue)
