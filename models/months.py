"""Months as the monthly update (月报) sees them: ``YYYY-MM`` keys, the month people type, and
each month's calendar — due on ``due_day`` of the next month, accepted late for ``late_days``
more days, then locked."""
from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Window:
    """When month ``month``'s update is due and when it locks (local dates)."""

    month: str
    first: date  # the month's first and last day
    last: date
    due: date
    lock: date  # the last day a late one is accepted

    def phase(self, today: date) -> str:
        """open (until the due day), late (after it, up to the lock day), locked."""
        if today <= self.due:
            return "open"
        return "late" if today <= self.lock else "locked"


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(day: date) -> str:
    return month_key(day.replace(day=1) - timedelta(days=1))


_MONTH_FORMS = (re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$"), re.compile(r"^(\d{4})(\d{2})$"))
_MONTH_ONLY = re.compile(r"^(\d{1,2})月(份)?$")


def parse_month(text: str, *, today: date) -> str | None:
    """``2026-10``, ``2026/10``, ``2026年10月``, ``202610``, ``10月`` (the latest October not
    after this month), 上月, 本月 → ``YYYY-MM``; ``""`` → None (the caller's default).
    Raises ValueError for anything else or a month that does not exist."""
    text = "".join(unicodedata.normalize("NFKC", text).split())
    if not text:
        return None
    if text in ("本月", "这个月", "当月"):
        return month_key(today)
    if text in ("上月", "上个月"):
        return previous_month(today)
    for pattern in _MONTH_FORMS:
        match = pattern.match(text)
        if match:
            year, mon = int(match.group(1)), int(match.group(2))
            break
    else:
        match = _MONTH_ONLY.match(text)
        if not match:
            raise ValueError(text)
        mon = int(match.group(1))
        year = today.year if mon <= today.month else today.year - 1
    if not 1 <= mon <= 12 or year < 2000:
        raise ValueError(text)
    return f"{year:04d}-{mon:02d}"


def window(month: str, *, due_day: int, late_days: int) -> Window:
    match = MONTH_RE.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(month)
    year, mon = int(match.group(1)), int(match.group(2))
    first = date(year, mon, 1)
    last = first.replace(day=calendar.monthrange(year, mon)[1])
    following = last + timedelta(days=1)
    due = following.replace(day=min(due_day, calendar.monthrange(following.year,
                                                                 following.month)[1]))
    return Window(month, first, last, due, due + timedelta(days=late_days))
