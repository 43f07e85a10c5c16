"""Looking at hazards: `隐患 YH…` (one hazard with its history), `台账` (open hazards, paged) and
`逾期` (past their deadline). A school sees its own; leaders above see their whole chain."""
from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import facts, find_visible
from models import hazard as hz
from models.org import Identity, Unit, unit_and_descendants

router = Router("hazard_view")


@router.command("隐患")
async def show(msg: Incoming, ctx: Ctx) -> Reply:
    """隐患 <隐患编号> —— 查看隐患详情和处理记录"""
    number, _ = hz.split_number(ctx.args)
    if number is None:
        return Reply.of("hazard/usage.txt.j2", command="隐患")
    result = await ctx.db.run(_details, who=ctx.identity, number=number,
                              area_names=ctx.services["areas"])
    if result is None:
        return Reply.of("hazard/not_found.txt.j2", number=number)
    return Reply.of("hazard/details.txt.j2", **result)


def _details(*, session: Session, who: Identity, number: str,
             area_names: dict[str, str]) -> dict | None:
    found = find_visible(session=session, number=number, who=who)
    if found is None:
        return None
    events = hz.history(session=session, hazard_id=found.hazard.id)
    photos = hz.photos(session=session, hazard_id=found.hazard.id)
    return {**facts(session, found.hazard, area_names),
            "events": [{"at": e.at, "actor": e.actor_name, "action": e.action,
                        "detail": e.detail} for e in events],
            "before_photos": len(photos["report"]), "after_photos": len(photos["rectified"])}


def open_hazards(*, session: Session, unit_id: int, overdue_on: date | None = None,
                 limit: int = 500) -> list[dict]:
    # the unit and every unit below it (a bureau sees the district)
    units = [u.id for u in unit_and_descendants(session=session, unit_id=unit_id)]
    query = (select(hz.Hazard, Unit.name).join(Unit, Unit.id == hz.Hazard.unit_id)
             .where(hz.Hazard.unit_id.in_(units), hz.Hazard.status.in_(hz.OPEN)))
    if overdue_on is not None:
        query = query.where(hz.Hazard.deadline < overdue_on,
                            hz.Hazard.status != hz.Status.RECTIFIED)
    rows = session.exec(query.order_by(hz.Hazard.level.desc(), hz.Hazard.deadline,
                                       hz.Hazard.id).limit(limit)).all()
    return [{"number": h.number, "unit": name, "description": h.description,
             "location": h.location, "level": h.level, "status": h.status,
             "deadline": h.deadline, "responsible": h.responsible,
             "days_over": (overdue_on - h.deadline).days if overdue_on and h.deadline else 0}
            for h, name in rows]


@router.command("台账")
async def ledger(msg: Incoming, ctx: Ctx) -> Reply:
    """台账 —— 查看未销号的隐患（领导可看到下属单位）"""
    rows = await ctx.db.run(open_hazards, unit_id=ctx.identity.unit_id)
    return Reply.of("hazard/ledger.txt.j2", rows=rows, unit=ctx.identity.unit_name,
                    today=ctx.local_now.date(), overdue=False)


@router.command("逾期")
async def overdue(msg: Incoming, ctx: Ctx) -> Reply:
    """逾期 —— 查看超过完成时限仍未整改完成的隐患"""
    today = ctx.local_now.date()
    rows = await ctx.db.run(open_hazards, unit_id=ctx.identity.unit_id, overdue_on=today)
    return Reply.of("hazard/ledger.txt.j2", rows=rows, unit=ctx.identity.unit_name,
                    today=today, overdue=True)
