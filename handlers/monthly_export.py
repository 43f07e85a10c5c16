"""导出月报: a leader's monthly progress table (seed 004 附件 进展情况) for their unit and every
unit below it, as an Excel file pushed to them.

As 导出台账 (handlers/ledger_export.py): the reply says the file is being made; a background
task kept in ``ctx.services["background"]`` reads the rows on its own connection and writes the
workbook in a worker thread, then queues the file and a short summary and wakes the outbox.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.db import Database
from bot.messages import Incoming, Reply
from bot.monthly_xlsx import export_path, write_monthly
from bot.router import Router
from handlers.hazard_common import Notices
from handlers.monthly_common import window_of
from models import monthly as mo
from models import outbox
from models.monthly_report import progress_table
from models.org import LEADERS, Unit

log = logging.getLogger(__name__)
router = Router("monthly_export")


@dataclass(frozen=True)
class Job:
    key: str  # the outbox keys' stem: one export per message, even if WeCom retries
    userid: str
    unit_id: int
    unit: str
    win: mo.Window
    today: date
    now: datetime


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
    tasks: set[asyncio.Task[None]] = ctx.services["background"]
    name = f"monthly-export:{who.userid}"
    if any(t.get_name() == name for t in tasks):  # one at a time per person
        return Reply.of("monthly/export_busy.txt.j2")
    job = Job(key=f"monthly-export:{msg.dedupe_key}", userid=who.userid, unit_id=who.unit_id,
              unit=who.unit_name, win=window_of(ctx, month), today=today, now=ctx.now)
    filename = ctx.renderer.render("monthly/export_filename.txt.j2", unit=who.unit_name,
                                   month=month)
    task = asyncio.create_task(_export(job, filename=filename, db=ctx.db, tz=ctx.tz,
                                       services=ctx.services), name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return Reply.of("monthly/export_working.txt.j2", unit=who.unit_name, month=month)


async def _export(job: Job, *, filename: str, db: Database, tz: ZoneInfo,
                  services: dict[str, Any]) -> None:
    result: dict[str, Any] | None = None
    try:
        result = await asyncio.to_thread(_make_file, job, db=db, tz=tz,
                                         data_dir=Path(services["data_dir"]))
    except Exception:
        log.exception("monthly export %s failed", job.key)
    try:
        await db.run(_enqueue, job=job, result=result, filename=filename,
                     notices=services["notices"])
    except Exception:
        log.exception("could not queue monthly export %s", job.key)
        return
    services["wake"]()


def _make_file(job: Job, *, db: Database, tz: ZoneInfo, data_dir: Path) -> dict[str, Any]:
    """In a worker thread, on a connection of its own: read the table, write the workbook."""
    def read(*, session: Session) -> tuple[str, dict[str, Any]]:
        code = session.get(Unit, job.unit_id).code
        return code, progress_table(session=session, unit_id=job.unit_id, win=job.win, tz=tz,
                                    today=job.today)
    code, table = db.call(read)
    relative = export_path(code, job.win.month,
                           suffix=hashlib.sha1(job.key.encode()).hexdigest()[:8])
    write_monthly(data_dir / relative, table, title=job.unit, month=job.win.month)
    return {"path": relative, **table["total"]}


def _enqueue(*, session: Session, job: Job, result: dict[str, Any] | None, filename: str,
             notices: Notices) -> None:
    common = {"unit": job.unit, "month": job.win.month, "filename": filename}
    if result is None:
        notices.text(session=session, template="monthly/export_failed.txt.j2",
                     key=f"{job.key}:failed", to=[job.userid], now=job.now, **common)
        return
    outbox.enqueue(session=session, key=f"{job.key}:file", recipient=job.userid,
                   msgtype="file", payload={"path": result["path"], "filename": filename},
                   now=job.now)
    notices.text(session=session, template="monthly/exported.txt.j2", key=f"{job.key}:text",
                 to=[job.userid], now=job.now, **common, **result)
