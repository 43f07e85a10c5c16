"""清单: the hazard-investigation checklists by area (data in models/checklists/*.toml)."""
from __future__ import annotations

from bot.context import Ctx
from bot.messages import Incoming, Reply
from bot.router import Router
from models.checklist import Checklist, Checklists

router = Router("checklist")


@router.command("清单")
async def show_checklist(msg: Incoming, ctx: Ctx) -> Reply:
    """清单 [领域] —— 查看隐患排查清单（如：清单 消防）"""
    checklists: Checklists = ctx.services["checklists"]  # loaded once at start-up (bot/app.py)
    areas = checklists.all()
    if not ctx.args:
        return Reply.of("checklist/areas.txt.j2", areas=areas)
    found = _pick(checklists, ctx.args)
    if len(found) == 1:
        return Reply.of("checklist/items.txt.j2", area=found[0])
    if found:
        return Reply.of("checklist/choose.txt.j2", word=ctx.args, areas=found)
    return Reply.of("checklist/not_found.txt.j2", word=ctx.args, areas=areas)


def _pick(checklists: Checklists, word: str) -> list[Checklist]:
    """The number shown by the area list, or what ``Checklists.find`` makes of the word."""
    areas = checklists.all()
    if word.isascii() and word.isdigit():
        return [areas[int(word) - 1]] if 1 <= int(word) <= len(areas) else []
    return checklists.find(word)
