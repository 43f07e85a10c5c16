"""The hazard ledger as an XLSX workbook: a 汇总 sheet when there is more than one unit, then one
sheet per unit, each with a title row, a bold frozen header and one row per hazard.

openpyxl's write-only mode streams rows to disk, so 100,000 rows take little memory; styles,
widths, filters and frozen panes are set before the rows are written. Dates are real Excel dates
with a date format, so the ledger sorts and filters in Excel. Blocking: call it in a thread
from async code. The column names are the ledger's own (seed 004 四(三)), kept here as data.
"""
from __future__ import annotations

import os
import re
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.filters import AutoFilter

from models.ledger import ledger_counts

# (row key, header, column width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("number", "隐患编号", 15), ("unit", "单位", 18), ("area", "领域", 14),
    ("description", "隐患名称", 40), ("level_name", "隐患等级", 9), ("location", "隐患位置", 20),
    ("measures", "治理措施", 40), ("deadline", "完成时限", 12), ("review_result", "复查结果", 22),
    ("responsibility", "责任部门和责任人", 22), ("status_name", "状态", 14),
    ("reported_at", "上报时间", 17), ("closed_at", "销号时间", 17),
)
SUMMARY_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("unit", "单位", 24), ("total", "隐患总数", 10), ("major", "重大隐患", 10),
    ("closed", "已销号", 10), ("open", "未销号", 10), ("overdue", "逾期未整改", 12),
)
SUMMARY_SHEET = "汇总"
TOTAL_LABEL = "合计"
TITLE = "{unit} 隐患排查治理台账（{start} 至 {end}）"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
SHEET_NAME_MAX = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_RESERVED = {"history"}  # Excel keeps this name for itself
EXPORT_DIR = "exports"  # under the data directory


def write_ledger(path: str | Path, sheets: dict[str, list[dict[str, Any]]], *, title: str,
                 period: tuple[date, date]) -> None:
    """Write ``sheets`` (unit name → ledger rows, as models.ledger.ledger_rows gives them) to
    ``path``; ``title`` names the unit the export is for. The file appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start, end = (d.isoformat() for d in period)
    wb = Workbook(write_only=True)
    taken: set[str] = set()
    if len(sheets) > 1:
        taken.add(SUMMARY_SHEET.casefold())
        ws = _sheet(wb, SUMMARY_SHEET, SUMMARY_COLUMNS, TITLE.format(unit=title, start=start,
                                                                      end=end), len(sheets))
        counts = [{"unit": unit, **ledger_counts(rows)} for unit, rows in sheets.items()]
        total = {key: sum(c[key] for c in counts) for key, _, _ in SUMMARY_COLUMNS[1:]}
        for row in (*counts, {"unit": TOTAL_LABEL, **total}):
            ws.append([row[key] for key, _, _ in SUMMARY_COLUMNS])
    for unit, rows in sheets.items():
        ws = _sheet(wb, sheet_name(unit, taken), COLUMNS,
                    TITLE.format(unit=unit, start=start, end=end), len(rows))
        _write_rows(ws, rows)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_path(code: str, start: date, end: date, *, suffix: str = "") -> str:
    """``exports/ledger-<CODE>-<from>-<to>[-suffix].xlsx``, relative to the data directory."""
    safe = re.sub(r"[^\w.-]", "_", code, flags=re.ASCII)
    tail = f"-{suffix}" if suffix else ""
    return f"{EXPORT_DIR}/ledger-{safe}-{start.isoformat()}-{end.isoformat()}{tail}.xlsx"


def sheet_name(name: str, taken: set[str]) -> str:
    """A legal, unique sheet name for ``name``: at most 31 characters, none of []:*?/\\, not
    starting or ending with an apostrophe; ``taken`` (casefolded, as Excel compares) grows."""
    base = _BAD_SHEET_CHARS.sub("_", name).strip("'")[:SHEET_NAME_MAX] or "Sheet"
    candidate, n = base, 1
    while candidate.casefold() in taken or candidate.casefold() in _RESERVED:
        n += 1
        suffix = f"({n})"
        candidate = base[:SHEET_NAME_MAX - len(suffix)].rstrip("'") + suffix
    taken.add(candidate.casefold())
    return candidate


def _sheet(wb: Workbook, name: str, columns: Sequence[tuple[str, str, int]], title: str,
           rows: int) -> Any:
    """A sheet with widths, the title row, the bold header and (frozen under it) the filter."""
    ws = wb.create_sheet(name)
    for i, (_, _, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    last = get_column_letter(len(columns))
    ws.freeze_panes = "A3"
    ws.merged_cells.add(f"A1:{last}1")
    ws.auto_filter = AutoFilter(ref=f"A2:{last}{2 + max(rows, 1)}")
    ws.append([_cell(ws, title, font=Font(bold=True, size=14),
                     alignment=Alignment(horizontal="center"))])
    ws.append([_cell(ws, header, font=Font(bold=True)) for _, header, _ in columns])
    return ws


def _write_rows(ws: Any, rows: Iterable[dict[str, Any]]) -> None:
    keys = [key for key, _, _ in COLUMNS]
    for row in rows:
        values = [row[key] for key in keys]
        for i, value in enumerate(values):
            if value == "":  # an empty cell, not an empty string Excel would count as text
                values[i] = None
            elif isinstance(value, datetime):  # Excel has no time zones: the local time shown
                values[i] = _cell(ws, value.replace(tzinfo=None), number_format=DATETIME_FORMAT)
        ws.append(values)  # a plain date gets openpyxl's yyyy-mm-dd by itself


def _cell(ws: Any, value: Any, **style: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell
