"""延期 and 重新打开. A major hazard's deadline moves only on request and approval by the level
above (`批准延期` / `驳回延期`); a general one's by the school's leaders. A leader can reopen a
closed hazard with a reason."""
from __future__ import annotations

from datetime import date

from sqlmodel import Session

from bot.context import Ctx
from bot.dates import DateParseError, parse_deadline
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import Notices, facts, find_visible, supervisors
from models import hazard_flow
from models.hazard import Level, split_number
from models.hazard_access import UNIT_LEADERS, can_decide_extension, can_reopen, can_work_on
from models.org import Identity, Person, userids_with_roles

router = Router("hazard_extension")


@router.command("延期")
async def extend(msg: Incoming, ctx: Ctx) -> Reply:
    """延期 <隐患编号> <新时限> <理由> —— 申请延长完成时限"""
    number, rest = split_number(ctx.args)
    when, _, reason = rest.partition(" ")
    if number is None or not when or not reason.strip():
        return Reply.of("hazard/extension_usage.txt.j2")
    try:
        deadline = parse_deadline(when, today=ctx.local_now.date(),
                                  calendar=ctx.services["calendar"])
    except DateParseError as exc:
        return Reply.of("hazard/plan_bad_field.txt.j2", field="deadline", error=exc.reason,
                        number=number, limit=0)
    result = await ctx.db.run(_request, who=ctx.identity, number=number, deadline=deadline,
                              reason=reason.strip()[:300], now=ctx.now,
                              today=ctx.local_now.date(), notices=ctx.services["notices"],
                              area_names=ctx.services["areas"])
    if result is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    return Reply.of("hazard/extension_requested.txt.j2", **result)


def _request(*, session: Session, who: Identity, number: str, deadline: date, reason: str,
             now, today: date, notices: Notices, area_names: dict[str, str]) -> dict | None:
    found = find_visible(session=session, number=number, who=who)
    if found is None:
        return None
    hazard = found.hazard
    if not can_work_on(who, hazard):
        return {**facts(session, hazard, area_names), "refused": "forbidden", "approvers": 0}
    refusal = hazard_flow.request_extension(
        session=session, hazard=hazard, actor=who, deadline=deadline, reason=reason, now=now,
        today=today, approve_at_once=can_decide_extension(who, hazard, found.chain))
    info = facts(session, hazard, area_names)
    approvers: list[str] = []
    if refusal == hazard_flow.Refusal.NEEDS_APPROVAL:
        approvers = (supervisors(session, found.units, include_own=False)
                     if hazard.level == Level.MAJOR else
                     userids_with_roles(session=session, unit_id=hazard.unit_id,
                                        roles=UNIT_LEADERS))
        notices.text(session=session, template="hazard/extension_request.txt.j2",
                     key=f"extension:{hazard.id}:{deadline.isoformat()}", to=approvers,
                     now=now, requester=who.name, requested=deadline, reason=reason, **info)
        refusal = None
    return {**info, "refused": refusal.value if refusal else "", "approvers": len(approvers),
            "requested": deadline}


@router.command("批准延期", "同意延期")
async def approve(msg: Incoming, ctx: Ctx) -> Reply:
    """批准延期 <隐患编号> —— 批准延期申请"""
    return await _decide(ctx, approve=True)


@router.command("驳回延期", "不同意延期")
async def reject(msg: Incoming, ctx: Ctx) -> Reply:
    """驳回延期 <隐患编号> <原因> —— 驳回延期申请"""
    return await _decide(ctx, approve=False)


async def _decide(ctx: Ctx, *, approve: bool) -> Reply:
    number, reason = split_number(ctx.args)
    if number is None:
        return Reply.of("hazard/usage.txt.j2", command="批准延期" if approve else "驳回延期")
    result = await ctx.db.run(_decide_tx, who=ctx.identity, number=number, approve=approve,
                              reason=reason[:300], now=ctx.now,
                              notices=ctx.services["notices"], area_names=ctx.services["areas"])
    if result is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    return Reply.of("hazard/extension_decided.txt.j2", **result)


def _decide_tx(*, session: Session, who: Identity, number: str, approve: bool, reason: str,
               now, notices: Notices, area_names: dict[str, str]) -> dict | None:
    found = find_visible(session=session, number=number, who=who)
    if found is None:
        return None
    hazard = found.hazard
    if not can_decide_extension(who, hazard, found.chain):
        return {**facts(session, hazard, area_names), "refused": "forbidden", "approve": approve}
    requester = session.get(Person, hazard.extension_by) if hazard.extension_by else None
    requested = hazard.extension_deadline
    refusal = hazard_flow.decide_extension(session=session, hazard=hazard, actor=who,
                                           approve=approve, reason=reason, now=now)
    info = facts(session, hazard, area_names)
    if refusal is None and requester and requester.userid:
        notices.text(session=session, template="hazard/extension_result.txt.j2",
                     key=f"extension-decided:{hazard.id}:{now.isoformat()}",
                     to=[requester.userid], now=now, approve=approve, decider=who.name,
                     reason=reason, requested=requested, **info)
    return {**info, "refused": refusal.value if refusal else "", "approve": approve}


@router.command("重新打开")
async def reopen(msg: Incoming, ctx: Ctx) -> Reply:
    """重新打开 <隐患编号> <原因> —— 重新打开已销号的隐患（领导）"""
    number, reason = split_number(ctx.args)
    if number is None or not reason:
        return Reply.of("hazard/reopen_usage.txt.j2")
    result = await ctx.db.run(_reopen, who=ctx.identity, number=number, reason=reason[:300],
                              now=ctx.now, area_names=ctx.services["areas"])
    if result is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    return Reply.of("hazard/reopened.txt.j2", **result)


def _reopen(*, session: Session, who: Identity, number: str, reason: str, now,
            area_names: dict[str, str]) -> dict | None:
    found = find_visible(session=session, number=number, who=who)
    if found is None:
        return None
    if not can_reopen(who, found.chain):
        return {**facts(session, found.hazard, area_names), "refused": "forbidden"}
    refusal = hazard_flow.reopen(session=session, hazard=found.hazard, actor=who,
                                 reason=reason, now=now)
    return {**facts(session, found.hazard, area_names),
            "refused": refusal.value if refusal else "", "reason": reason}
