"""绑定: a WeCom user redeems a one-time invite code and joins a unit with a role."""
from __future__ import annotations

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from models.invite import redeem_invite
from models.org import ROLE_LABELS

router = Router("binding")


@router.command("绑定", public=True)
async def bind(msg: Incoming, ctx: Ctx) -> Reply:
    """绑定 <邀请码> —— 用管理员发的邀请码绑定单位和角色"""
    if not ctx.args:
        return Reply.of("binding/usage.txt.j2")
    if ctx.identity is not None:
        return Reply.of("binding/result.txt.j2", outcome="already_bound",
                        unit=ctx.identity.unit_name, name=ctx.identity.name, role="")
    result = await ctx.db.run(redeem_invite, code=ctx.args, userid=msg.user_id, now=ctx.now)
    return Reply.of("binding/result.txt.j2", outcome=result.outcome.value,
                    unit=result.unit_name, name=result.name,
                    role=ROLE_LABELS.get(result.role, result.role))
