"""导出台账: a leader's hazard ledger (隐患治理清单, seed 004) as an Excel file, pushed to them
(made in the background: handlers/file_export.py)."""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import date, timedelta
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
from handlers.file_export import Export, launch
from models.ledger import ledger_counts, ledger_rows
from models.org import LEADERS, Unit

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


@router.command("导出台账", roles=LEADERS)
async def export_ledger(msg: Incoming, ctx: Ctx) -> Reply:
    """导出台账 [开始日期] [结束日期] —— 导出本单位及下属单位的隐患台账（Excel 文件，默认本月）"""
    today = ctx.local_now.date()
    try:
        start, end = parse_period(ctx.args, today=today)
    except PeriodError as exc:
        return Reply.of("ledger/usage.txt.j2", reason=exc.reason, today=today)
    who = ctx.identity
    key = f"ledger:{msg.dedupe_key}"
    export = Export(kind="ledger", key=key, userid=who.userid, now=ctx.now,
                    filename=ctx.renderer.render("ledger/filename.txt.j2", unit=who.unit_name,
                                                 start=start, end=end),
                    done_template="ledger/exported.txt.j2",
                    failed_template="ledger/failed.txt.j2",
                    data={"unit": who.unit_name, "start": start, "end": end})
    make = functools.partial(_make_file, key=key, unit_id=who.unit_id, unit=who.unit_name,
                             start=start, end=end, today=today, db=ctx.db, tz=ctx.tz,
                             area_names=ctx.services["areas"],
                             data_dir=Path(ctx.services["data_dir"]))
    if not launch(ctx, export, make):
        return Reply.of("ledger/busy.txt.j2")
    return Reply.of("ledger/working.txt.j2", unit=who.unit_name, start=start, end=end)


def _make_file(*, key: str, unit_id: int, unit: str, start: date, end: date, today: date,
               db: Database, tz: ZoneInfo, area_names: dict[str, str],
               data_dir: Path) -> dict[str, Any]:
    """In a worker thread: read the rows and write the workbook."""
    def read(*, session: Session) -> tuple[str, dict[str, list[dict[str, Any]]]]:
        code = session.get(Unit, unit_id).code
        return code, ledger_rows(session=session, unit_id=unit_id, start=start, end=end, tz=tz,
                                 today=today, area_names=area_names)
    code, sheets = db.call(read)
    relative = export_path(code, start, end, suffix=hashlib.sha1(key.encode()).hexdigest()[:8])
    write_ledger(data_dir / relative, sheets, title=unit, period=(start, end))
    counts = ledger_counts([row for rows in sheets.values() for row in rows])
    return {"path": relative, "units": len(sheets), **counts}
