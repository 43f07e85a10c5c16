"""Mainland China working days: statutory holidays and adjusted working days (调休).

The data comes from the `chinese_calendar` package, which encodes the State Council's yearly
notice (国务院办公厅关于部分节假日安排的通知), plus ``bot/data/holidays.toml`` for years the
package does not know yet. The file wins over the package for every date it lists. In a year that
neither knows, weekends are days off and weekdays are working days; `covers()` tells which years
are known, so a nightly check can warn before a new year starts unknown.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

import chinese_calendar

# The package's Chinese names drop the 节 of three festivals; use the names the notices print.
_FULL_NAMES = {"清明": "清明节", "端午": "端午节", "中秋": "中秋节"}


class HolidayFileError(ValueError):
    """The override file is malformed. `reason` is a machine-readable code, `detail` says where."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class WorkCalendar:
    """Immutable answers about working days. Build it with `load_calendar()`; tests may build one
    from plain data."""

    def __init__(self, *, holidays: Mapping[date, str], workdays: Iterable[date], years: Iterable[int]) -> None:
        self._holidays = MappingProxyType(dict(holidays))
        self._workdays = frozenset(workdays)
        self._years = frozenset(years)
        both = self._workdays & self._holidays.keys()
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")

    def covers(self, year: int) -> bool:
        """True if the holidays of `year` are known (from the package or the override file)."""
        return year in self._years

    def is_workday(self, d: date) -> bool:
        if d in self._workdays:
            return True
        return d.weekday() < 5 and d not in self._holidays

    def is_holiday(self, d: date) -> bool:
        """A day off of a statutory holiday period (including its 调休 days), not a plain weekend."""
        return d in self._holidays

    def is_adjusted_workday(self, d: date) -> bool:
        """A weekend day that is a working day because of 调休."""
        return d in self._workdays

    def holiday_name(self, d: date) -> str | None:
        return self._holidays.get(d)

    def add_workdays(self, d: date, n: int) -> date:
        """The date `n` working days after `d` (`d` itself not counted); before `d` if `n` < 0."""
        step = timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_workday(d):
                remaining -= 1
        return d

    def workdays_between(self, a: date, b: date) -> int:
        """Working days from `a` (excluded) to `b` (included), negative if `b` is before `a`, so
        that ``workdays_between(d, add_workdays(d, n)) == n``."""
        sign = 1 if b >= a else -1
        step = timedelta(days=sign)
        return sign * sum(self.is_workday(a + step * i) for i in range(1, abs((b - a).days) + 1))

    def holidays_in(self, start: date, end: date) -> list[tuple[date, str]]:
        """Statutory days off from `start` to `end`, both included, in date order."""
        return sorted((d, name) for d, name in self._holidays.items() if start <= d <= end)


def load_calendar(override_path: Path | None = None) -> WorkCalendar:
    """The package's data with the override file on top (the bundled one unless a path is given)."""
    holidays = {d: _package_name(value) for d, value in chinese_calendar.holidays.items()}
    workdays = set(chinese_calendar.workdays)
    years = {d.year for d in holidays}
    if override_path is None:
        text = files("bot").joinpath("data/holidays.toml").read_text(encoding="utf-8")
    else:
        text = Path(override_path).read_text(encoding="utf-8")
    for year, (extra_holidays, extra_workdays) in parse_overrides(text).items():
        years.add(year)
        for d, name in extra_holidays.items():
            holidays[d] = name
            workdays.discard(d)
        for d in extra_workdays:
            workdays.add(d)
            holidays.pop(d, None)
    return WorkCalendar(holidays=holidays, workdays=workdays, years=years)


def parse_overrides(text: str) -> dict[int, tuple[dict[date, str], set[date]]]:
    """Read the override file: per year, its holidays (date -> name) and adjusted working days."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HolidayFileError("syntax", str(exc)) from None
    result: dict[int, tuple[dict[date, str], set[date]]] = {}
    for key, section in doc.items():
        if not (key.isascii() and key.isdigit() and isinstance(section, dict)):
            raise HolidayFileError("bad_year", key)
        year = int(key)
        unknown = set(section) - {"holidays", "workdays"}
        if unknown:
            raise HolidayFileError("unknown_key", f"[{key}] {sorted(unknown)}")
        holidays: dict[date, str] = {}
        for entry in _as_list(section.get("holidays", []), key):
            for d in _entry_dates(entry, key):
                holidays[d] = entry["name"]
        listed = _as_list(section.get("workdays", []), key)
        for d in listed:
            if not _is_date(d):
                raise HolidayFileError("bad_entry", f"[{key}] {d!r}")
        workdays = set(listed)
        for d in (*holidays, *workdays):
            if d.year != year:
                raise HolidayFileError("wrong_year", f"[{key}] {d!r}")
        if holidays.keys() & workdays:
            raise HolidayFileError("conflict", f"[{key}] {sorted(holidays.keys() & workdays)}")
        result[year] = (holidays, workdays)
    return result


def _as_list(value: object, key: str) -> list:
    if not isinstance(value, list):
        raise HolidayFileError("not_a_list", f"[{key}] {value!r}")
    return value


def _entry_dates(entry: object, key: str) -> list[date]:
    """``{date = …, name = …}`` or ``{start = …, end = …, name = …}`` (TOML dates, end included)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise HolidayFileError("bad_entry", f"[{key}] {entry!r}")
    if set(entry) == {"date", "name"} and _is_date(entry["date"]):
        return [entry["date"]]
    if set(entry) == {"start", "end", "name"} and _is_date(entry["start"]) and _is_date(entry["end"]):
        start, end = entry["start"], entry["end"]
        if end < start or (end - start).days > 31:
            raise HolidayFileError("bad_range", f"[{key}] {entry!r}")
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    raise HolidayFileError("bad_entry", f"[{key}] {entry!r}")


def _is_date(value: object) -> bool:
    # tomllib gives datetime for "2027-01-01T00:00", which is a date subclass: refuse it.
    return type(value) is date


def _package_name(value: str) -> str:
    chinese = chinese_calendar.Holiday(value).chinese
    return _FULL_NAMES.get(chinese, chinese)
