"""Read the dates people type for a deadline: 2026-12-01, 12月1日, 明天, 3天后, 下周五, 月底, 3个工作日.

Every failure is a `DateParseError` with a machine-readable `reason`; the handler renders the
words. `today` is always passed in, never read from the clock.
"""
from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from collections.abc import Callable
from datetime import date, timedelta
from typing import Literal

from bot.cn_numbers import CN_NUMERAL_CHARS, parse_count
from bot.workcal import WorkCalendar

Reason = Literal["unparseable", "invalid", "past"]

WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

# Relative forms further out than this are typos ("300天后" meant 30), not deadlines.
MAX_AHEAD_DAYS = 3660
# Nobody types a date this long; refusing early keeps the regexes cheap on pasted paragraphs.
_MAX_TEXT = 40

_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
_WEEKDAY_CHARS = {**{c: i for i, c in enumerate("一二三四五六日")}, "天": 6,
                  **{str(i + 1): i for i in range(7)}}


class DateParseError(ValueError):
    """`reason`: unparseable (not a date we read), invalid (no such date, or too far ahead) or past
    (before today; `resolved` then holds the date it meant)."""

    def __init__(self, reason: Reason, text: str, *, resolved: date | None = None) -> None:
        super().__init__(f"{reason}: {text!r}")
        self.reason: Reason = reason
        self.text = text
        self.resolved = resolved


class _Reject(Exception):
    def __init__(self, reason: Reason) -> None:
        self.reason: Reason = reason


def parse_date(text: str, *, today: date, calendar: WorkCalendar) -> date:
    """The date `text` names, seen from `today`; never a date before `today`."""
    cleaned = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    if not cleaned or len(cleaned) > _MAX_TEXT:
        raise DateParseError("unparseable", text)
    for pattern, resolve in _RULES:
        match = pattern.fullmatch(cleaned)
        if match is None:
            continue
        try:
            result = resolve(match, today, calendar)
        except _Reject as exc:
            raise DateParseError(exc.reason, text) from None
        except (OverflowError, ValueError):  # past year 9999: no such date
            raise DateParseError("invalid", text) from None
        if result < today:
            raise DateParseError("past", text, resolved=result)
        return result
    raise DateParseError("unparseable", text)


def parse_deadline(text: str, *, today: date, calendar: WorkCalendar) -> date:
    """A deadline: a date before `today` is `past`, `today` itself is allowed (as in parse_date)."""
    return parse_date(text, today=today, calendar=calendar)


def parse_any_date(text: str, *, today: date) -> date:
    """A calendar date, past or future, for a period such as an export's: 2026-11-01,
    2026/11/1, 2026年11月1日, 11月1日 or 11-1 (this year), 今天, 昨天. Unlike parse_date it
    never refuses a past date and reads no relative forms (3天后, 下周五)."""
    cleaned = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    if not cleaned or len(cleaned) > _MAX_TEXT:
        raise DateParseError("unparseable", text)
    if cleaned in _ANY_DAY_WORDS:
        return today + timedelta(days=_ANY_DAY_WORDS[cleaned])
    for pattern, with_year in _ANY_DATE_RULES:
        match = pattern.fullmatch(cleaned)
        if match is None:
            continue
        try:
            year = int(match["y"]) if with_year else today.year
            result = _make_date(year, _count(match["m"], 0), _count(match["d"], 0))
        except _Reject as exc:
            raise DateParseError(exc.reason, text) from None
        if result is None:
            raise DateParseError("invalid", text)
        return result
    raise DateParseError("unparseable", text)


def format_date(d: date) -> str:
    """``2026-12-01（周二）``."""
    return f"{d.isoformat()}（{WEEKDAY_NAMES[d.weekday()]}）"


# --- resolvers: (match, today, calendar) -> date, raising _Reject for a date that cannot be --------

def _count(raw: str, unit_days: int) -> int:
    n = parse_count(raw)
    if n is None:
        raise _Reject("unparseable")
    if n * unit_days > MAX_AHEAD_DAYS:
        raise _Reject("invalid")
    return n


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _full_date(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    result = _make_date(int(m["y"]), _count(m["m"], 0), _count(m["d"], 0))
    if result is None:
        raise _Reject("invalid")
    return result


def _month_day(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    """This year's date, or next year's once this year's has passed."""
    month, day = _count(m["m"], 0), _count(m["d"], 0)
    this_year = _make_date(today.year, month, day)
    if this_year is not None and this_year >= today:
        return this_year
    next_year = _make_date(today.year + 1, month, day)
    if next_year is not None:
        return next_year
    if this_year is not None:  # 2月29日 typed on 2028-03-01: it meant a day that has passed
        return this_year
    raise _Reject("invalid")


def _relative_word(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return today + timedelta(days=_RELATIVE_DAYS[m[0]])


def _days_later(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return today + timedelta(days=_count(m["n"], 1))


def _weeks_later(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return today + timedelta(weeks=_count(m["n"], 7))


def _months_later(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return add_months(today, _count(m["n"], 31))


def _weekday(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    """下周五: Friday of next week (weeks start on Monday). 本周五/这周五: this week's, even if it
    has passed (then parse_date says `past`). 周五: the next Friday, today included."""
    monday = today - timedelta(days=today.weekday())
    this_week = monday + timedelta(days=_WEEKDAY_CHARS[m["w"]])
    prefix = m["p"] or ""
    if prefix.startswith("下"):
        return this_week + timedelta(weeks=1)
    if prefix or this_week >= today:
        return this_week
    return this_week + timedelta(weeks=1)


def _month_end(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    first = add_months(today.replace(day=1), 1 if (m["p"] or "").startswith("下") else 0)
    return first.replace(day=monthrange(first.year, first.month)[1])


def _year_end(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return date(today.year, 12, 31)


def _workdays_later(m: re.Match[str], today: date, cal: WorkCalendar) -> date:
    return cal.add_workdays(today, _count(m["n"], 1))


def add_months(d: date, n: int) -> date:
    """The same day `n` months later, clamped to the month's last day (1月31日 + 1 -> 2月28/29日)."""
    year, month0 = divmod(d.month - 1 + n, 12)
    year += d.year
    return date(year, month0 + 1, min(d.day, monthrange(year, month0 + 1)[1]))


_N = f"(?P<n>[0-9]{{1,4}}|[{CN_NUMERAL_CHARS}]{{1,3}})"
_MD = f"(?P<m>[0-9]{{1,2}}|[{CN_NUMERAL_CHARS}]{{1,3}})月(?P<d>[0-9]{{1,2}}|[{CN_NUMERAL_CHARS}]{{1,3}})[日号]?"
_LATER = "(?:以|之)?后"
_Resolver = Callable[[re.Match[str], date, WorkCalendar], date]
_RULES: tuple[tuple[re.Pattern[str], _Resolver], ...] = tuple((re.compile(p), f) for p, f in (
    (r"(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})", _full_date),
    (f"(?P<y>[0-9]{{4}})年{_MD}", _full_date),
    (_MD, _month_day),
    (r"(?P<m>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})", _month_day),
    ("|".join(_RELATIVE_DAYS), _relative_word),
    (f"{_N}[天日]{_LATER}", _days_later),
    (f"{_N}个?(?:周|星期|礼拜){_LATER}", _weeks_later),
    (f"{_N}个月{_LATER}", _months_later),
    (f"(?P<p>下个?|本|这个?)?(?:周|星期|礼拜)(?P<w>[{''.join(_WEEKDAY_CHARS)}])", _weekday),
    ("(?P<p>下个?|本|这个?)?月底", _month_end),
    ("(?:今)?年底", _year_end),
    (f"{_N}个?工作日(?:{_LATER}|内|以内|之内)?", _workdays_later),
))

_ANY_DAY_WORDS = {"今天": 0, "今日": 0, "昨天": -1, "昨日": -1}
_ANY_DATE_RULES: tuple[tuple[re.Pattern[str], bool], ...] = tuple((re.compile(p), y) for p, y in (
    (r"(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})", True),
    (f"(?P<y>[0-9]{{4}})年{_MD}", True),
    (_MD, False),
    (r"(?P<m>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})", False),
))
