"""Commands every sender has: 取消, 下一页, 帮助, and the welcome on entering the app."""
from __future__ import annotations

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from models.org import ROLE_LABELS

cancel_router = Router("cancel")
router = Router("common")


@cancel_router.command("取消", over_state=True, public=True)
async def cancel(msg: Incoming, ctx: Ctx) -> Reply:
    """取消 —— 退出正在进行的操作"""
    hook = ctx.routes.cancel_handler(ctx.conversation.state)
    if hook is not None:  # the conversation has its own way to end (see Router.on_cancel)
        reply = await hook(msg, ctx)
        ctx.conversation.clear()
        return reply
    had_state = ctx.conversation.state is not None
    ctx.conversation.clear()
    return Reply.of("common/cancelled.txt.j2", had_state=had_state)


@cancel_router.command("下一页", over_state=True)
async def next_page(msg: Incoming, ctx: Ctx) -> Reply:
    """下一页 —— 查看长消息的下一页"""
    pages = ctx.conversation.pages
    if not pages:
        return Reply.of("common/no_more_pages.txt.j2")
    ctx.conversation.set_pages(pages[1:])
    return Reply(template="common/page.txt.j2", data={"text": pages[0], "left": len(pages) - 1},
                 keep_pages=True)


@router.command("帮助", "help", "菜单", public=True, over_state=True)
async def help_(msg: Incoming, ctx: Ctx) -> Reply:
    """帮助 —— 列出你可以使用的命令"""
    if ctx.identity is None:
        return Reply.of("common/unbound.txt.j2")
    commands = [c.help for c in ctx.routes.help_for(ctx.identity.roles)]
    roles = [ROLE_LABELS[r] for r in sorted(ctx.identity.roles) if r in ROLE_LABELS]
    return Reply.of("common/help.txt.j2", name=ctx.identity.name,
                    unit=ctx.identity.unit_name, roles=roles, commands=commands)


@router.event("enter_agent")
async def welcome(msg: Incoming, ctx: Ctx) -> Reply:
    if ctx.identity is None:
        return Reply.of("common/unbound.txt.j2")
    return Reply.of("common/welcome.txt.j2", name=ctx.identity.name)
