"""The monthly progress table of a unit and every unit below it (seed 004 附件 进展情况): one row
per reporting unit with its statistics and its update's status, and the units' progress texts,
work information and typical cases. Plain dicts, so the XLSX writer needs no database.

A submitted update shows what the unit reported (its corrections, else the figures computed
when it was submitted); a unit that has not submitted shows the figures computed now.
"""
from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models import monthly as mo
from models.org import Unit, UnitKind, unit_and_descendants
from models.stats import UnitStats, rate, unit_stats

REPORTING_KINDS = (UnitKind.TOWNSHIP, UnitKind.SCHOOL, UnitKind.KINDERGARTEN)
COUNT_FIELDS = tuple(f for f, _, is_rate in mo.FIELDS if not is_rate)


def reporting_units(*, session: Session, unit_id: int) -> list[Unit]:
    """The units owing a monthly update: the unit itself and those below it (tree order), the
    bureau excepted."""
    return [u for u in unit_and_descendants(session=session, unit_id=unit_id)
            if u.kind in REPORTING_KINDS]


def status_of(row: mo.MonthlyUpdate | None) -> str:
    """submitted, late or missing (a draft is not submitted)."""
    if row is None or row.status != mo.UpdateStatus.SUBMITTED:
        return "missing"
    return "late" if row.late else "submitted"


def progress_table(*, session: Session, unit_id: int, win: mo.Window, tz: ZoneInfo,
                   today: date) -> dict[str, Any]:
    """``{"rows": [...], "total": {...}, "items": [...]}`` for the units in scope."""
    units = reporting_units(session=session, unit_id=unit_id)
    ids = [u.id for u in units]
    live = unit_stats(session=session, unit_ids=ids, start=win.first, end=win.last, tz=tz,
                      today=today)
    updates = mo.updates_of(session=session, month=win.month, unit_ids=ids)
    rows, items = [], []
    for unit in units:
        update = updates.get(unit.id)
        status = status_of(update)
        if status == "missing":
            values, base, corrections = live[unit.id].as_dict(), live[unit.id], []
        else:
            values, base = mo.reported(update), UnitStats.from_dict(update.computed)
            corrections = [{"name": f["name"], "rate": f["rate"], "value": f["corrected"],
                            "computed": f["computed"]}
                           for f in mo.figures(update) if f["corrected"] is not None]
        rows.append({"unit": unit.name, "code": unit.code, **values, "status": status,
                     "corrections": corrections, "shifts": base.shifts,
                     "checked_in": base.checked_in})
        if update is not None:
            items += _items(session, unit, update, status)
    return {"rows": rows, "total": _total(rows), "items": items}


def _items(session: Session, unit: Unit, update: mo.MonthlyUpdate,
           status: str) -> list[dict[str, Any]]:
    out = []
    if update.progress:
        out.append({"unit": unit.name, "kind": "progress", "n": 1, "text": update.progress,
                    "photos": 0, "source": "own", "status": status})
    counters = {mo.ItemKind.WORK_INFO: 0, mo.ItemKind.CASE: 0}
    for item in mo.items(session=session, update_id=update.id):
        counters[item.kind] += 1
        source = ("own" if item.source == mo.OWN else "edited" if item.edited else "drafted")
        out.append({"unit": unit.name, "kind": item.kind, "n": counters[item.kind],
                    "text": item.text, "photos": len(item.photo_ids), "source": source,
                    "status": status})
    return out


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {f: sum(r[f] or 0 for r in rows) for f in COUNT_FIELDS}
    total["rectification_rate"] = rate(total["rectified"],
                                       total["found_general"] + total["found_major"])
    shifts, checked = sum(r["shifts"] for r in rows), sum(r["checked_in"] for r in rows)
    total["checkin_rate"] = rate(checked, shifts)
    total["submitted"] = sum(r["status"] != "missing" for r in rows)
    total["units"] = len(rows)
    return total
