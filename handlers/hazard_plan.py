"""整改: record the rectification plan. Seed 001 requires all five elements — 责任 (department
and person), 措施, 资金, 时限, 预案 — and the plan is not accepted until every one is there.

Fields can come labelled in one message (`整改 YH2026-000001 责任部门:总务处 责任人:王五 …`);
the bot asks for each one still missing. The responsible person is told.
"""
from __future__ import annotations

import re
from datetime import date

from sqlmodel import Session

from bot.context import Ctx
from bot.dates import DateParseError, parse_deadline
from bot.messages import Incoming, Reply
from bot.router import Router, State, StatesGroup, normalise
from handlers.hazard_common import Notices, facts, find_visible
from models import hazard_flow
from models.hazard import Status, split_number
from models.hazard_access import can_work_on
from models.org import Identity, person_by_name

router = Router("hazard_plan")
FIELDS = ("department", "responsible", "measures", "funds", "deadline", "contingency")
LABELS = {"责任部门": "department", "部门": "department", "责任人": "responsible",
          "治理措施": "measures", "整改措施": "measures", "措施": "measures",
          "资金": "funds", "经费": "funds", "完成时限": "deadline", "时限": "deadline",
          "期限": "deadline", "应急预案": "contingency", "预案": "contingency"}
LABEL_RE = re.compile("(" + "|".join(sorted(LABELS, key=len, reverse=True)) + r")\s*[:：]")
LIMITS = {"department": 100, "responsible": 50, "measures": 1000, "funds": 100,
          "contingency": 1000}


class PlanForm(StatesGroup):
    department = State()
    responsible = State()
    measures = State()
    funds = State()
    deadline = State()
    contingency = State()


def parse_labelled(text: str) -> dict[str, str]:
    """`责任部门:总务处 责任人:王五` → {"department": "总务处", "responsible": "王五"}."""
    parts = LABEL_RE.split(text)
    return {LABELS[label]: value.strip() for label, value in zip(parts[1::2], parts[2::2])
            if value.strip()}


@router.command("整改")
async def plan(msg: Incoming, ctx: Ctx) -> Reply:
    """整改 <隐患编号> —— 填写整改方案（责任、措施、资金、时限、预案）"""
    number, rest = split_number(ctx.args)
    if number is None:
        return Reply.of("hazard/usage.txt.j2", command="整改")
    found = await ctx.db.run(find_visible, number=number, who=ctx.identity)
    if found is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    if not can_work_on(ctx.identity, found.hazard):
        return Reply.of("hazard/forbidden.txt.j2", number=number, action="整改")
    if found.hazard.status not in (Status.REPORTED, Status.PLANNED):
        return Reply.of("hazard/refused.txt.j2", number=number, reason="wrong_status",
                        status=found.hazard.status)
    ctx.conversation.clear()
    return await _collect(ctx, {"number": number}, parse_labelled(rest))


async def _collect(ctx: Ctx, data: dict, answers: dict[str, str]) -> Reply:
    """Validate the new answers, then ask for the first field still missing or save."""
    for field, value in answers.items():
        error = _check(ctx, field, value)
        if error:
            ctx.conversation.set(getattr(PlanForm, field), **data)
            return Reply.of("hazard/plan_bad_field.txt.j2", field=field, error=error,
                            number=data["number"], limit=LIMITS.get(field, 0))
        data[field] = value
    for field in FIELDS:
        if not data.get(field):
            ctx.conversation.set(getattr(PlanForm, field), **data)
            return Reply.of("hazard/plan_ask.txt.j2", field=field, number=data["number"],
                            have=[f for f in FIELDS if data.get(f)])
    ctx.conversation.clear()
    result = await ctx.db.run(_save, who=ctx.identity, data=data, now=ctx.now,
                              today=ctx.local_now.date(), deadline=_deadline(ctx, data),
                              notices=ctx.services["notices"], area_names=ctx.services["areas"])
    return Reply.of("hazard/plan_saved.txt.j2", **result)


def _deadline(ctx: Ctx, data: dict) -> date:
    return parse_deadline(data["deadline"], today=ctx.local_now.date(),
                          calendar=ctx.services["calendar"])


def _check(ctx: Ctx, field: str, value: str) -> str | None:
    if field == "deadline":
        try:
            _deadline(ctx, {"deadline": value})
        except DateParseError as exc:
            return exc.reason
        return None
    return "too_long" if len(value) > LIMITS[field] else None


def _make_state_handler(field: str):
    async def on_field(msg: Incoming, ctx: Ctx) -> Reply:
        text = normalise(msg.text)
        answers = parse_labelled(text) or {field: text}
        return await _collect(ctx, ctx.conversation.data, answers)
    on_field.__doc__ = f"Stores the plan's {field} and asks for the next missing element."
    return on_field


for _field in FIELDS:
    router.state(getattr(PlanForm, _field))(_make_state_handler(_field))


def _save(*, session: Session, who: Identity, data: dict, now, today: date, deadline: date,
          notices: Notices, area_names: dict[str, str]) -> dict:
    found = find_visible(session=session, number=data["number"], who=who)
    if found is None or not can_work_on(who, found.hazard):
        return {"number": data["number"], "refused": "forbidden"}
    hazard = found.hazard
    person = person_by_name(session=session, unit_id=hazard.unit_id, name=data["responsible"])
    refusal = hazard_flow.set_plan(session=session, hazard=hazard, actor=who, today=today,
                                   now=now, plan=hazard_flow.Plan(
                                       department=data["department"],
                                       responsible=data["responsible"],
                                       measures=data["measures"], funds=data["funds"],
                                       deadline=deadline, contingency=data["contingency"],
                                       responsible_userid=person.userid if person else None))
    info = facts(session, hazard, area_names)
    if refusal is None and person and person.userid and person.userid != who.userid:
        notices.text(session=session, template="hazard/plan_assigned.txt.j2",
                     key=f"assigned:{hazard.id}:{deadline.isoformat()}", to=[person.userid],
                     now=now, **info)
    return {**info, "refused": refusal.value if refusal else "",
            "told": bool(person and person.userid)}
