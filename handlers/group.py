"""绑定群: a principal (组长) or an admin binds a group chat to a unit, in that group.

From then on a hazard reported in the group belongs to that unit (``ctx.unit_id``), and the
unit's group pushes go to it. A principal binds to their own unit, an admin to their unit or
any unit below it; moving a group bound to another unit needs the same right over that one.
"""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router, normalise
from models import group
from models.org import Identity, Role, Unit, unit_chain

router = Router("group")


@router.command("绑定群", roles=[Role.LEADER, Role.ADMIN])
async def bind_group(msg: Incoming, ctx: Ctx) -> Reply:
    """绑定群 <单位名称或编码> —— 在群里把本群绑定到单位，群里上报的隐患即归该单位"""
    if msg.chat_type != "group" or not msg.chat_id:
        return Reply.of("group/not_in_group.txt.j2")
    if not ctx.args:
        return Reply.of("group/usage.txt.j2")
    result = await ctx.db.run(_bind, who=ctx.identity, chatid=msg.chat_id,
                              name=normalise(ctx.args), now=ctx.now)
    return Reply.of("group/bound.txt.j2", **result)


def may_bind(session: Session, who: Identity, unit_id: int) -> bool:
    if Role.LEADER in who.roles and who.unit_id == unit_id:
        return True
    return Role.ADMIN in who.roles and who.unit_id in [
        u.id for u in unit_chain(session=session, unit_id=unit_id)]


def _find_unit(session: Session, name: str) -> Unit | None:
    return session.exec(select(Unit).where((Unit.name == name) | (Unit.code == name.upper()))
                        ).first()


def _bind(*, session: Session, who: Identity, chatid: str, name: str, now: datetime) -> dict:
    unit = _find_unit(session, name)
    if unit is None:
        return {"outcome": "not_found", "name": name, "unit": "", "previous": ""}
    current = group.unit_for_chat(session=session, chatid=chatid)
    previous = session.get(Unit, current) if current else None
    data = {"name": name, "unit": unit.name, "previous": previous.name if previous else ""}
    if current == unit.id:
        return {**data, "outcome": "already"}
    if not may_bind(session, who, unit.id) or (current and not may_bind(session, who, current)):
        return {**data, "outcome": "forbidden",
                "unit": unit.name if not may_bind(session, who, unit.id) else data["previous"]}
    group.bind(session=session, chatid=chatid, unit_id=unit.id, person_id=who.person_id,
               now=now)
    return {**data, "outcome": "moved" if previous else "bound"}
