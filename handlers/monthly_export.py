"""导出月报: a leader's monthly progress table (seed 004 附件 进展情况) for their unit and every
unit below it, as an Excel file pushed to them.

Made in the background like 导出台账 (handlers/file_export.py).
"""
from __future__ import annotations

import functools
import hashlib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.db import Database
from bot.messages import Incoming, Reply
from bot.monthly_xlsx import export_path, write_monthly
from bot.router import Router
from handlers.file_export import Export, launch
from handlers.monthly_common import window_of
from models import monthly as mo
from models.monthly_report import progress_table
from models.org import LEADERS, Unit

router = Router("monthly_export")


@router.command("导出月报", roles=LEADERS)
async def export_monthly(msg: Incoming, ctx: Ctx) -> Reply:
    """导出月报 [年-月] —— 导出本单位及下属单位的月报进展情况表（Excel 文件，默认上月）"""
    today = ctx.local_now.date()
    try:
        month = mo.parse_month(ctx.args, today=today) or mo.previous_month(today)
    except ValueError:
        return Reply.of("monthly/export_usage.txt.j2", word=ctx.args, today=today)
    if month > mo.month_key(today):
        return Reply.of("monthly/future.txt.j2", month=month)
    who = ctx.identity
    key = f"monthly-export:{msg.dedupe_key}"
    export = Export(kind="monthly-export", key=key, userid=who.userid, now=ctx.now,
                    filename=ctx.renderer.render("monthly/export_filename.txt.j2",
                                                 unit=who.unit_name, month=month),
                    done_template="monthly/exported.txt.j2",
                    failed_template="monthly/export_failed.txt.j2",
                    data={"unit": who.unit_name, "month": month})
    make = functools.partial(_make_file, key=key, unit_id=who.unit_id, unit=who.unit_name,
                             win=window_of(ctx, month), today=today, db=ctx.db, tz=ctx.tz,
                             data_dir=Path(ctx.services["data_dir"]))
    if not launch(ctx, export, make):
        return Reply.of("monthly/export_busy.txt.j2")
    return Reply.of("monthly/export_working.txt.j2", unit=who.unit_name, month=month)


def _make_file(*, key: str, unit_id: int, unit: str, win: mo.Window, today: date,
               db: Database, tz: ZoneInfo, data_dir: Path) -> dict[str, Any]:
    """In a worker thread: read the table and write the workbook."""
    def read(*, session: Session) -> tuple[str, dict[str, Any]]:
        code = session.get(Unit, unit_id).code
        return code, progress_table(session=session, unit_id=unit_id, win=win, tz=tz,
                                    today=today)
    code, table = db.call(read)
    relative = export_path(code, win.month, suffix=hashlib.sha1(key.encode()).hexdigest()[:8])
    write_monthly(data_dir / relative, table, title=unit, month=win.month)
    return {"path": relative, **table["total"]}
