"""``safebot import``: units and people from a CSV or XLSX file, all or nothing.

Every row is checked against the file and the database before anything is written; any problem
and the whole import is refused with a report naming file, sheet and line. Re-importing a file
is idempotent: units are matched by code; people by 企业微信账号, else by unit + 手机 (or, failing
that, unit + 姓名 among people with no 手机 on record), else by unit + 姓名. Roles are only ever
added. A blank 企业微信账号, 职务, 办公电话 or 手机 cell keeps what is on record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot.db import Database
from bot.render import Renderer
from bot.tabular import Row, Table, TabularError, read_tables
from models.org import ROLE_NAMES, UNIT_KIND_NAMES, Person, PersonRole, Unit, UnitKind, add_role

UNIT_COLUMNS = ("单位编码", "单位名称", "类型", "上级单位编码")
PEOPLE_COLUMNS = ("企业微信账号", "姓名", "职务", "办公电话", "手机", "单位编码", "角色")
ROLE_SEPARATORS = re.compile(r"[、,，;；\s]+")
MOBILE = re.compile(r"\d{11}")
LIMITS = {"单位编码": 32, "单位名称": 100, "企业微信账号": 64, "姓名": 50, "职务": 50,
          "办公电话": 32}


@dataclass(frozen=True)
class Problem:
    order: tuple[int, int]  # (table number, line) for sorting
    file: str
    sheet: str | None
    line: int | None
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class ImportError_(Exception):
    """The file was refused; nothing was written. ``report()`` is the text for the admin."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the import file")
        self.problems = sorted(problems, key=lambda p: p.order)

    def report(self) -> str:
        return Renderer().render("cli/import_errors.txt.j2", problems=self.problems)


@dataclass
class _Check:
    """Collects problems; ``where`` is (table number, table)."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, where: tuple[int, Table], line: int | None, kind: str, **data: Any) -> None:
        number, table = where
        self.problems.append(Problem((number, line or 0), table.file, table.sheet, line, kind,
                                     data))


def import_file(db: Database, path: Path) -> str:
    try:
        tables = read_tables(path)
    except TabularError as exc:
        raise ImportError_([Problem((0, 0), exc.data.get("file", path.name),
                                    exc.data.get("sheet"), None, exc.kind, exc.data)]) from None
    if not tables:
        raise ImportError_([Problem((0, 0), path.name, None, None, "no_tables")])
    check = _Check()
    units: list[tuple[tuple[int, Table], Row]] = []
    people: list[tuple[tuple[int, Table], Row]] = []
    for number, table in enumerate(tables):
        columns = set(table.header)
        is_units, is_people = set(UNIT_COLUMNS) <= columns, set(PEOPLE_COLUMNS) <= columns
        if is_units != is_people:
            (units if is_units else people).extend(((number, table), r) for r in table.rows)
        else:
            check.add((number, table), None, "bad_header", header=table.header,
                      units=UNIT_COLUMNS, people=PEOPLE_COLUMNS)
    counts = db.call(_import, units=units, people=people, check=check)
    return Renderer().render("cli/import_done.txt.j2", file=path.name, **counts)


def _import(*, session: Session, units: list, people: list, check: _Check) -> dict[str, int]:
    db_units = {u.code: u for u in session.exec(select(Unit)).all()}
    unit_specs = _check_units(units, db_units, check)
    person_specs = _check_people(session, people, db_units, set(unit_specs), check)
    if check.problems:
        raise ImportError_(check.problems)
    counts = _write_units(session, unit_specs, db_units)
    counts.update(_write_people(session, person_specs, db_units))
    return counts


def _cell(row: Row, column: str, where: tuple, check: _Check, *, required: bool) -> str:
    value = row.get(column)
    if required and not value:
        check.add(where, row.line, "missing", column=column)
    elif column in LIMITS and len(value) > LIMITS[column]:
        check.add(where, row.line, "too_long", column=column, limit=LIMITS[column])
        return ""
    return value


def _check_units(rows: list, db_units: dict[str, Unit], check: _Check) -> dict[str, dict]:
    specs: dict[str, dict] = {}
    for where, row in rows:
        code = _cell(row, "单位编码", where, check, required=True)
        name = _cell(row, "单位名称", where, check, required=True)
        kind_name = _cell(row, "类型", where, check, required=True)
        parent = row.get("上级单位编码")
        kind = UNIT_KIND_NAMES.get(kind_name)
        if kind_name and kind is None:
            check.add(where, row.line, "unknown_kind", value=kind_name,
                      allowed=list(UNIT_KIND_NAMES))
        if not parent and kind_name and kind != UnitKind.BUREAU:
            check.add(where, row.line, "missing_parent", type=kind_name)
        if code in specs:
            check.add(where, row.line, "duplicate_unit", code=code, first=specs[code]["line"])
        elif code:
            specs[code] = dict(where=where, line=row.line, name=name, kind=kind, parent=parent)
    id_to_code = {u.id: c for c, u in db_units.items()}
    parents = {c: id_to_code.get(u.parent_id) for c, u in db_units.items()}
    names = {c: u.name for c, u in db_units.items()}
    for code, spec in specs.items():
        parents[code] = spec["parent"] or None
        names[code] = spec["name"] or names.get(code, "")
    codes_by_name: dict[str, list[str]] = {}
    for code, name in names.items():
        codes_by_name.setdefault(name, []).append(code)
    for code, spec in specs.items():
        where, line = spec["where"], spec["line"]
        if spec["parent"] and spec["parent"] not in parents:
            check.add(where, line, "unknown_parent", code=spec["parent"])
        others = [c for c in codes_by_name.get(spec["name"], []) if c != code]
        if spec["name"] and others:
            check.add(where, line, "duplicate_name", name=spec["name"], others=sorted(others))
        chain, current = [code], parents.get(code)
        while current is not None and current not in chain:
            chain.append(current)
            current = parents.get(current)
        if current == code:
            check.add(where, line, "cycle", chain=chain + [code])
    return specs


class _Index:
    """People on record, or rows of the file, indexed the ways an import row is matched."""

    def __init__(self) -> None:
        self.userid: dict[str, Any] = {}
        self.keys: dict[tuple[str, Any, str], Any] = {}

    def add(self, item: Any, *, userid: str | None, unit: Any, mobile: str, name: str) -> None:
        if userid:
            self.userid.setdefault(userid, item)
        self.keys.setdefault(("name", unit, name), item)
        self.keys.setdefault(("mobile", unit, mobile) if mobile else ("bare", unit, name), item)

    def natural(self, *, unit: Any, mobile: str, name: str) -> tuple[str, Any]:
        """(how, match): by 手机, else by 姓名 among those with no 手机; no 手机: by 姓名."""
        for key in ([("mobile", unit, mobile), ("bare", unit, name)] if mobile
                    else [("name", unit, name)]):
            if key in self.keys:
                return ("mobile" if key[0] == "mobile" else "name"), self.keys[key]
        return "", None


def _check_people(session: Session, rows: list, db_units: dict[str, Unit],
                  file_units: set[str], check: _Check) -> list[dict]:
    on_record, in_file = _Index(), _Index()
    for p in session.exec(select(Person).order_by(Person.id)).all():
        on_record.add(p, userid=p.userid, unit=p.unit_id, mobile=p.mobile, name=p.name)
    specs: list[dict] = []
    targets: dict[int, int] = {}
    for where, row in rows:
        line = row.line
        userid = _cell(row, "企业微信账号", where, check, required=False)
        name = _cell(row, "姓名", where, check, required=True)
        title = _cell(row, "职务", where, check, required=False)
        office = _cell(row, "办公电话", where, check, required=False)
        mobile = re.sub(r"[\s-]", "", row.get("手机"))
        unit_code = _cell(row, "单位编码", where, check, required=True)
        roles_text = _cell(row, "角色", where, check, required=True)
        if mobile and not MOBILE.fullmatch(mobile):
            check.add(where, line, "bad_mobile", value=row.get("手机"))
            mobile = ""
        if unit_code and unit_code not in db_units and unit_code not in file_units:
            check.add(where, line, "unknown_unit", code=unit_code)
        roles = list(dict.fromkeys(r for r in ROLE_SEPARATORS.split(roles_text) if r))
        unknown = [r for r in roles if r not in ROLE_NAMES]
        if unknown:
            check.add(where, line, "unknown_role", roles=unknown, allowed=list(ROLE_NAMES))
        # a later import must not match this row to the person of another row
        how, first = (in_file.natural(unit=unit_code, mobile=mobile, name=name)
                      if unit_code and name else ("", None))
        if userid in in_file.userid:
            how, first = "userid", in_file.userid[userid]
        if first:
            check.add(where, line, f"duplicate_person_{how}", first=first,
                      value={"userid": userid, "mobile": mobile, "name": name}[how])
        in_file.add(line, userid=userid, unit=unit_code, mobile=mobile, name=name)
        unit = db_units.get(unit_code)
        natural = on_record.natural(unit=unit.id, mobile=mobile, name=name)[1] if unit else None
        holder = on_record.userid.get(userid) if userid else None
        if holder and natural and natural.id != holder.id:
            check.add(where, line, "userid_taken", userid=userid, holder=holder.name)
        elif userid and not holder and natural and natural.userid:
            check.add(where, line, "person_bound", name=natural.name, userid=natural.userid)
        target = holder or natural
        if target is not None and targets.setdefault(target.id, line) != line:
            check.add(where, line, "same_person", name=target.name, first=targets[target.id])
        specs.append(dict(target=target, userid=userid, name=name, title=title, office=office,
                          mobile=mobile, unit=unit_code, roles=[ROLE_NAMES.get(r) for r in roles]))
    return specs


def _write_units(session: Session, specs: dict[str, dict],
                 db_units: dict[str, Unit]) -> dict[str, int]:
    id_to_code = {u.id: c for c, u in db_units.items()}
    changed = [c for c, spec in specs.items() if c in db_units and
               (db_units[c].name, db_units[c].kind, id_to_code.get(db_units[c].parent_id))
               != (spec["name"], spec["kind"], spec["parent"] or None)]
    for code in changed:  # names are unique: free them first, so renames may swap names
        if db_units[code].name != specs[code]["name"]:
            db_units[code].name = f"（改名中）{code}"
    session.flush()
    created = [c for c in specs if c not in db_units]
    for code in created:
        db_units[code] = Unit(code=code, name="", kind="")
        session.add(db_units[code])
    for code, spec in specs.items():
        db_units[code].name, db_units[code].kind = spec["name"], spec["kind"]
    session.flush()
    for code, spec in specs.items():
        db_units[code].parent_id = db_units[spec["parent"]].id if spec["parent"] else None
    session.flush()
    return {"units_created": len(created), "units_updated": len(changed),
            "units_unchanged": len(specs) - len(created) - len(changed)}


def _write_people(session: Session, specs: list[dict],
                  db_units: dict[str, Unit]) -> dict[str, int]:
    created = updated = roles_added = unbound = 0
    for spec in specs:
        person, unit_id = spec["target"], db_units[spec["unit"]].id
        wanted = {"name": spec["name"], "unit_id": unit_id, "userid": spec["userid"],
                  "title": spec["title"], "mobile": spec["mobile"],
                  "office_phone": spec["office"]}
        if person is None:
            person = Person(**{k: v or (None if k == "userid" else "") for k, v in wanted.items()})
            session.add(person)
            session.flush()
            created += 1
        else:
            changes = {k: v for k, v in wanted.items() if v and getattr(person, k) != v}
            for key, value in changes.items():
                setattr(person, key, value)
            updated += bool(changes)
        have = set(session.exec(select(PersonRole.role)
                                .where(PersonRole.person_id == person.id)).all())
        for role in spec["roles"]:
            if role not in have:
                add_role(session=session, person_id=person.id, role=role)
                roles_added += 1
        unbound += not person.userid
    session.flush()
    return {"people_created": created, "people_updated": updated,
            "people_unchanged": len(specs) - created - updated, "roles_added": roles_added,
            "people_unbound": unbound}
