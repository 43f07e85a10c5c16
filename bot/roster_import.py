"""``safebot roster import``: duty slots from a CSV or XLSX file, all or nothing.

Columns: 单位编码, 日期, 班次 (白班 / 夜班 / 24小时), 开始 and 结束 (optional: 白班 08:00–18:00,
夜班 18:00–次日08:00, 24小时 08:00–次日08:00), 值班人员 and 带班领导 (a name or a WeCom userid;
the leader may be of a unit above). Every row is checked first; any problem and nothing is
written, with every bad row reported by line (as bot/org_import.py). A slot already on record
is replaced and the people whose slot changed are told by the duty sweep. Rosters that put
someone on leave on duty, and holiday days short of 24-hour duty with a leader, are flagged.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.dates import DateParseError, parse_any_date
from bot.db import Database
from bot.org_import import Problem
from bot.render import Renderer
from bot.tabular import Row, TabularError, read_tables
from bot.workcal import WorkCalendar
from models import duty
from models.duty_facts import PersonNotFound, find_person
from models.org import Person, Unit, unit_chain

REQUIRED = ("单位编码", "日期", "班次", "值班人员")
CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})(?::\d{2})?")


class RosterImportError(Exception):
    """The file was refused; nothing was written. ``report()`` is the text for the admin."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the roster file")
        self.problems = sorted(problems, key=lambda p: p.order)

    def report(self) -> str:
        return Renderer().render("duty/import_errors.txt.j2", problems=self.problems)


def import_roster(db: Database, path: Path, *, tz: ZoneInfo, now: datetime,
                  calendar: WorkCalendar) -> str:
    try:
        tables = read_tables(path)
    except TabularError as exc:
        raise RosterImportError([Problem((0, 0), exc.data.get("file", path.name),
                                         exc.data.get("sheet"), None, exc.kind,
                                         exc.data)]) from None
    rows: list[tuple[int, Any, Row]] = []
    problems: list[Problem] = []
    for number, table in enumerate(tables):
        missing = [c for c in REQUIRED if c not in table.header]
        if missing:
            problems.append(Problem((number, 0), table.file, table.sheet, None, "bad_header",
                                    {"missing": missing, "header": table.header}))
        else:
            rows += [(number, table, row) for row in table.rows]
    if not tables or (not rows and not problems):
        raise RosterImportError([Problem((0, 0), path.name, None, None, "no_tables")])
    counts = db.call(_import, rows=rows, problems=problems, tz=tz, now=now, calendar=calendar)
    return Renderer(tz).render("duty/import_done.txt.j2", file=path.name, **counts)


def _import(*, session: Session, rows: list, problems: list[Problem], tz: ZoneInfo,
            now: datetime, calendar: WorkCalendar) -> dict:
    today = now.astimezone(tz).date()
    units = {u.code: u for u in session.exec(select(Unit)).all()}
    specs: list[dict] = []
    seen: dict[tuple, int] = {}
    for number, table, row in rows:
        def bad(kind: str, **data: Any) -> None:
            problems.append(Problem((number, row.line), table.file, table.sheet, row.line,
                                    kind, data))
        spec = _check_row(session, row, units, today, tz, bad)
        if spec is None:
            continue
        slot = (spec["unit_id"], spec["day"], spec["kind"])
        if slot in seen:
            bad("duplicate_slot", first=seen[slot])
            continue
        seen[slot] = row.line
        specs.append(spec)
    if problems:
        raise RosterImportError(problems)
    existing = {(s.unit_id, s.day, s.kind) for s in session.exec(select(duty.Shift).where(
        duty.Shift.unit_id.in_({s["unit_id"] for s in specs}))).all()}
    created = updated = 0
    shifts = []
    for spec in specs:
        is_new = (spec["unit_id"], spec["day"], spec["kind"]) not in existing
        shift, changes = duty.set_slot(session=session, now=now, **spec)
        shifts.append(shift)
        created += is_new
        updated += bool(changes) and not is_new
    away = duty.leave_conflicts(session=session, shifts=shifts)
    flags = [{"kind": "on_leave", "unit": _unit_name(session, s), "day": s.day,
              "shift": duty.KIND_LABELS[s.kind], "names": [session.get(Person, p).name
                                                           for p in away[s.id]]}
             for s in shifts if s.id in away]
    for day in sorted({s.day for s in shifts if calendar.is_holiday(s.day)}):
        for unit_id in sorted({s.unit_id for s in shifts if s.day == day}):
            mine = session.exec(select(duty.Shift).where(duty.Shift.unit_id == unit_id,
                                                         duty.Shift.day == day)).all()
            if not duty.covered(list(mine)):
                flags.append({"kind": "holiday_short", "day": day,
                              "unit": session.get(Unit, unit_id).name,
                              "holiday": calendar.holiday_name(day), "shift": "", "names": []})
    return {"created": created, "updated": updated,
            "unchanged": len(specs) - created - updated, "flags": flags}


def _unit_name(session: Session, shift: duty.Shift) -> str:
    return session.get(Unit, shift.unit_id).name


def _check_row(session: Session, row: Row, units: dict[str, Unit], today: date,
               tz: ZoneInfo, bad) -> dict | None:
    ok = True
    code, day_text, kind_text = row.get("单位编码"), row.get("日期"), row.get("班次")
    for column in REQUIRED:
        if not row.get(column):
            bad("missing", column=column)
            ok = False
    unit = units.get(code)
    if code and unit is None:
        bad("unknown_unit", code=code)
        ok = False
    day = None
    if day_text:
        try:
            day = parse_any_date(day_text.removesuffix(" 00:00"), today=today)
        except DateParseError:
            bad("bad_date", value=day_text)
            ok = False
        if day is not None and day < today:
            bad("past_date", value=day_text)
            ok = False
    kind = duty.KIND_NAMES.get(kind_text)
    if kind_text and kind is None:
        bad("bad_kind", value=kind_text, allowed=["白班", "夜班", "24小时"])
        ok = False
    times = []
    for column in ("开始", "结束"):
        text = row.get(column)
        match = CLOCK.fullmatch(text) if text else None
        value = time(int(match[1]), int(match[2])) if match and int(match[1]) < 24 \
            and int(match[2]) < 60 else None
        if text and value is None:
            bad("bad_time", column=column, value=text)
            ok = False
        times.append(value)
    people: list[Person | None] = []
    chain = [u.id for u in unit_chain(session=session, unit_id=unit.id)] if unit else []
    for column, scope in (("值班人员", chain[:1]), ("带班领导", chain)):
        text = row.get(column)
        try:
            people.append(find_person(session, scope, text) if text and scope else None)
        except PersonNotFound as exc:
            bad("ambiguous_person" if exc.candidates else "unknown_person", column=column,
                value=text, candidates=exc.candidates, unit=code)
            ok = False
    if not ok:
        return None
    start_at, end_at = duty.slot_times(day, kind, tz, times[0], times[1])
    return {"unit_id": unit.id, "day": day, "kind": kind, "start_at": start_at,
            "end_at": end_at, "person_id": people[0].id,
            "leader_id": people[1].id if people[1] else None}
