"""Reading tables from CSV and XLSX files: one header row, then data rows, all cells as text.

A CSV file is one table; each sheet of an XLSX workbook is one table. Line numbers are the
spreadsheet's row numbers (the header is line 1), so error reports point at the row a person
sees in Excel. CSV is read as UTF-8 (with or without BOM), else GB18030 (what Chinese Excel
writes by default). Used by the organisation import and, later, roster imports.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Iterable

CSV_ENCODINGS = ("utf-8-sig", "gb18030")


class TabularError(Exception):
    """The file cannot be read as tables; ``kind`` names the template branch to render."""

    def __init__(self, kind: str, **data: Any) -> None:
        super().__init__(kind)
        self.kind, self.data = kind, data


@dataclass
class Row:
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass
class Table:
    file: str
    sheet: str | None  # None for a CSV file
    header: list[str]  # stripped names, blank columns dropped
    rows: list[Row] = field(default_factory=list)


def read_tables(path: Path) -> list[Table]:
    """Every non-empty table in ``path`` (a .csv or .xlsx file), in file/sheet order."""
    if not path.is_file():
        raise TabularError("not_found", file=str(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _table(path.name, None, _csv_rows(path))
        return [table] if table else []
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_tables(path)
    raise TabularError("unsupported", file=path.name, suffix=path.suffix)


def cell_text(value: Any) -> str:
    """A cell as text: numbers Excel stored as floats (phone numbers) lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).replace("\ufeff", "").strip()


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for encoding in CSV_ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TabularError("encoding", file=path.name)
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise TabularError("unreadable", file=path.name, detail=str(exc)) from None


def _xlsx_tables(path: Path) -> list[Table]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TabularError("unreadable", file=path.name, detail=str(exc)) from None
    try:
        tables = []
        for sheet in workbook.worksheets:
            table = _table(path.name, sheet.title, sheet.iter_rows(values_only=True))
            if table:
                tables.append(table)
        return tables
    finally:
        workbook.close()


def _table(file: str, sheet: str | None, rows: Iterable[Iterable[Any]]) -> Table | None:
    """The first non-blank row is the header; blank rows are skipped but still counted, so
    ``Row.line`` stays the spreadsheet's row number. None when every row is blank."""
    table: Table | None = None
    columns: list[tuple[int, str]] = []
    for line, cells in enumerate(rows, start=1):
        texts = [cell_text(c) for c in cells]
        if table is None:
            if not any(texts):
                continue
            columns = [(i, name) for i, name in enumerate(texts) if name]
            names = [name for _, name in columns]
            duplicated = sorted({n for n in names if names.count(n) > 1})
            if duplicated:
                raise TabularError("duplicate_columns", file=file, sheet=sheet,
                                   columns=duplicated)
            table = Table(file=file, sheet=sheet, header=names)
            continue
        if not any(texts):
            continue
        values = {name: (texts[i] if i < len(texts) else "") for i, name in columns}
        table.rows.append(Row(line=line, values=values))
    return table
