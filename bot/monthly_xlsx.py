"""The monthly progress table as an XLSX workbook (seed 004 附件 进展情况): sheet 1 one row per
unit with the statistics, the update's status and the corrections beside the computed values,
and a 合计 row; sheet 2 the units' progress texts, work information and typical cases.

Built like the ledger (bot/ledger_xlsx.py): write-only, title row, bold frozen header, filter,
real numbers (rates as Excel percentages). Blocking: call it in a thread from async code.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment

from bot.ledger_xlsx import EXPORT_DIR, _cell, _sheet

# (row key, header, column width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("unit", "单位", 22), ("found_general", "排查隐患数（一般）", 12),
    ("found_major", "排查隐患数（重大）", 12), ("rectified", "已整改", 9),
    ("closed", "已销号", 9), ("overdue", "逾期", 8), ("rectification_rate", "整改率", 9),
    ("selfchecks", "自查次数", 9), ("inspections_principal", "校长带队检查", 12),
    ("inspections_other", "其他领导检查", 12), ("checkin_rate", "值班签到率", 11),
    ("deliverables_submitted", "交付物（已交）", 12), ("deliverables_due", "交付物（应交）", 12),
    ("status_name", "月报状态", 10), ("corrections", "更正说明（系统统计值）", 36),
)
ITEM_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("unit", "单位", 22), ("kind_name", "类别", 12), ("n", "序号", 6), ("text", "内容", 80),
    ("photos", "照片（张）", 10), ("source_name", "来源", 14), ("status_name", "月报状态", 10),
)
RATES = frozenset({"rectification_rate", "checkin_rate"})
STATUS_NAMES = {"submitted": "已提交", "late": "迟交", "missing": "未提交"}
KIND_NAMES = {"progress": "工作进展情况", "work_info": "工作信息", "case": "典型案例"}
SOURCE_NAMES = {"own": "单位填写", "drafted": "系统草拟", "edited": "系统草拟后修改"}
SHEETS = ("进展情况", "工作信息和典型案例")
TITLES = ("{unit} 安全工作月报进展情况（{month}）", "{unit} 工作信息和典型案例（{month}）")
TOTAL_LABEL = "合计"
TOTAL_STATUS = "已提交 {submitted}/{units}"
CORRECTION = "{name}：{value}（系统 {computed}）"
PERCENT_FORMAT = "0.0%"


def month_name(month: str) -> str:
    return f"{month[:4]}年{int(month[5:])}月"


def write_monthly(path: str | Path, table: dict[str, Any], *, title: str, month: str) -> None:
    """Write ``table`` (models.monthly_report.progress_table) to ``path``, whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    rows = table["rows"]
    ws = _sheet(wb, SHEETS[0], COLUMNS, TITLES[0].format(unit=title, month=month_name(month)),
                len(rows) + 1)
    for row in rows:
        shown = {**row, "status_name": STATUS_NAMES[row["status"]],
                 "corrections": "；".join(_correction(c) for c in row["corrections"])}
        ws.append(_values(ws, shown))
    total = {**table["total"], "unit": TOTAL_LABEL, "corrections": "",
             "status_name": TOTAL_STATUS.format(**table["total"])}
    ws.append(_values(ws, total))
    items = _sheet(wb, SHEETS[1], ITEM_COLUMNS,
                   TITLES[1].format(unit=title, month=month_name(month)), len(table["items"]))
    wrap = Alignment(wrap_text=True, vertical="top")
    for item in table["items"]:
        shown = {**item, "kind_name": KIND_NAMES[item["kind"]],
                 "source_name": SOURCE_NAMES[item["source"]],
                 "status_name": STATUS_NAMES[item["status"]]}
        items.append([_cell(items, shown[key], alignment=wrap) if key == "text" else shown[key]
                      for key, _, _ in ITEM_COLUMNS])
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _values(ws: Any, row: dict[str, Any]) -> list[Any]:
    out = []
    for key, _, _ in COLUMNS:
        value = row[key]
        if key in RATES and value is not None:
            value = _cell(ws, value, number_format=PERCENT_FORMAT)
        out.append(None if value == "" else value)
    return out


def _correction(c: dict[str, Any]) -> str:
    def show(v: Any) -> str:
        return "—" if v is None else f"{v * 100:.1f}%" if c["rate"] else str(v)
    return CORRECTION.format(name=c["name"], value=show(c["value"]), computed=show(c["computed"]))


def export_path(code: str, month: str, *, suffix: str = "") -> str:
    """``exports/monthly-<CODE>-<YYYY-MM>[-suffix].xlsx``, relative to the data directory."""
    safe = re.sub(r"[^\w.-]", "_", code, flags=re.ASCII)
    tail = f"-{suffix}" if suffix else ""
    return f"{EXPORT_DIR}/monthly-{safe}-{month}{tail}.xlsx"
