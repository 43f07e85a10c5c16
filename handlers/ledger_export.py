"""导出台账: a leader's hazard ledger (隐患治理清单, seed 004) as an Excel file, pushed to them.

Slow work answers at once and pushes the result later (DESIGN.md): the reply says the file is
being made; a background task (kept in ``ctx.services["background"]``, awaited at shutdown)
reads the rows and writes the workbook in a worker thread, off the event loop and off the
database thread, then queues the file and a short summary in the outbox and wakes it.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.context import Ctx
from bot.dates import DateParseError, add_months, parse_any_date
from bot.db import Database
from bot.ledger_xlsx import export_path, write_ledger
from bot.messages import Incoming, Reply
from bot.router import Router
from handlers.hazard_common import Notices
from models import outbox
from models.ledger import ledger_counts, ledger_rows
from models.org import LEADERS, Unit

log = logging.getLogger(__name__)
router = Router("ledger_export")
_RANGE_SEPARATOR = re.compile(r"\s*(?:至|到|~|—+)\s*|\s+")


class PeriodError(ValueError):
    def __init__(self, reason: str) -> None:  # unparseable | invalid | reversed
        super().__init__(reason)
        self.reason = reason


def parse_period(text: str, *, today: date) -> tuple[date, date]:
    """``""``/本月: this month so far; 上月: last month; 今年: this year so far; one date: from
    it to today; two dates (``2026-11-01 2026-11-30``, ``11月1日至11月30日``): that range."""
    text = unicodedata.normalize("NFKC", text).strip()
    if text in ("", "本月"):
        return today.replace(day=1), today
    if text == "上月":
        first = add_months(today.replace(day=1), -1)
        return first, today.replace(day=1) - timedelta(days=1)
    if text in ("今年", "本年"):
        return date(today.year, 1, 1), today
    parts = [p for p in _RANGE_SEPARATOR.split(text) if p]
    if len(parts) not in (1, 2):
        raise PeriodError("unparseable")
    try:
        dates = [parse_any_date(p, today=today) for p in parts]
    except DateParseError as exc:
        raise PeriodError(exc.reason) from None
    start, end = dates if len(dates) == 2 else (dates[0], today)
    if start > end:
        raise PeriodError("reversed")
    return start, end


@dataclass(frozen=True)
class Job:
    """One export, with what the background task needs from the turn that asked for it."""

    key: str          # the outbox keys' stem: one export per message, even if WeCom retries
    userid: str
    unit_id: int
    unit: str
    start: date
    end: date
    today: date
    now: datetime


@router.command("导出台账", roles=LEADERS)
async def export_ledger(msg: Incoming, ctx: Ctx) -> Reply:
    """导出台账 [开始日期] [结束日期] —— 导出本单位及下属单位的隐患台账（Excel 文件，默认本月）"""
    today = ctx.local_now.date()
    try:
        start, end = parse_period(ctx.args, today=today)
    except PeriodError as exc:
        return Reply.of("ledger/usage.txt.j2", reason=exc.reason, today=today)
    who = ctx.identity
    tasks: set[asyncio.Task[None]] = ctx.services["background"]
    name = f"ledger:{who.userid}"
    if any(t.get_name() == name for t in tasks):  # one at a time per person
        return Reply.of("ledger/busy.txt.j2")
    job = Job(key=f"ledger:{msg.dedupe_key}", userid=who.userid, unit_id=who.unit_id,
              unit=who.unit_name, start=start, end=end, today=today, now=ctx.now)
    filename = ctx.renderer.render("ledger/filename.txt.j2", unit=who.unit_name,
                                   start=start, end=end)
    task = asyncio.create_task(_export(job, filename=filename, db=ctx.db, tz=ctx.tz,
                                       services=ctx.services), name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return Reply.of("ledger/working.txt.j2", unit=who.unit_name, start=start, end=end)


async def _export(job: Job, *, filename: str, db: Database, tz: ZoneInfo,
                  services: dict[str, Any]) -> None:
    """Make the file, then queue it (or the apology) and wake the outbox."""
    result: dict[str, Any] | None = None
    try:
        result = await asyncio.to_thread(_make_file, job, db=db, tz=tz,
                                         area_names=services["areas"],
                                         data_dir=Path(services["data_dir"]))
    except Exception:
        log.exception("ledger export %s failed", job.key)
    try:
        await db.run(_enqueue, job=job, result=result, filename=filename,
                     notices=services["notices"])
    except Exception:
        log.exception("could not queue ledger export %s", job.key)
        return
    services["wake"]()


def _make_file(job: Job, *, db: Database, tz: ZoneInfo, area_names: dict[str, str],
               data_dir: Path) -> dict[str, Any]:
    """In a worker thread: read the rows on a connection of its own (a big export must not
    hold the database thread the callbacks need) and write the workbook."""
    def read(*, session: Session) -> tuple[str, dict[str, list[dict[str, Any]]]]:
        unit = session.get(Unit, job.unit_id)
        return unit.code, ledger_rows(session=session, unit_id=job.unit_id, start=job.start,
                                      end=job.end, tz=tz, today=job.today,
                                      area_names=area_names)
    code, sheets = db.call(read)
    relative = export_path(code, job.start, job.end,
                           suffix=hashlib.sha1(job.key.encode()).hexdigest()[:8])
    write_ledger(data_dir / relative, sheets, title=job.unit, period=(job.start, job.end))
    counts = ledger_counts([row for rows in sheets.values() for row in rows])
    return {"path": relative, "units": len(sheets), **counts}


def _enqueue(*, session: Session, job: Job, result: dict[str, Any] | None, filename: str,
             notices: Notices) -> None:
    common = {"unit": job.unit, "start": job.start, "end": job.end, "filename": filename}
    if result is None:
        notices.text(session=session, template="ledger/failed.txt.j2", key=f"{job.key}:failed",
                     to=[job.userid], now=job.now, **common)
        return
    outbox.enqueue(session=session, key=f"{job.key}:file", recipient=job.userid,
                   msgtype="file", payload={"path": result["path"], "filename": filename},
                   now=job.now)
    notices.text(session=session, template="ledger/exported.txt.j2", key=f"{job.key}:text",
                 to=[job.userid], now=job.now, **common, **result)
