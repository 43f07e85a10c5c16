"""The numbers of ``统计`` for one scope and period, compared with the period before.

The period before a period within one month is the same days one month earlier (本月 so far
against the same days of last month, 上月 against the month before); a period from January 1
is compared with the same days a year earlier (今年); any other period with the days just
before it, as many as it has.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.dates import add_months
from models import scope_stats
from models.org import unit_and_descendants
from models.stats import hazard_totals


def previous_period(start: date, end: date) -> tuple[date, date]:
    if (start.year, start.month) == (end.year, end.month):
        month_end = add_months(end.replace(day=1), 1) - timedelta(days=1)
        # to the end of a month: to the end of the month before (Sep 1-30 → Aug 1-31)
        before_end = (end.replace(day=1) - timedelta(days=1) if end == month_end
                      else add_months(end, -1))
        return add_months(start, -1), before_end
    if (start.month, start.day) == (1, 1) and start.year == end.year:  # 今年: a year earlier
        return start.replace(year=start.year - 1), add_months(end, -12)
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def report(*, session: Session, unit_id: int, start: date, end: date, today: date,
           tz: ZoneInfo, areas: dict[str, str]) -> dict[str, Any]:
    """Everything the 统计 reply shows for the unit and every unit below it."""
    units = unit_and_descendants(session=session, unit_id=unit_id)
    ids = [u.id for u in units]
    before_start, before_end = previous_period(start, end)
    # the hazards' figures only: the template shows no others (self-checks, inspections,
    # duty and deliverables are the monthly table's and the weekly digest's)
    now, before = hazard_totals(session=session, unit_ids=ids, tz=tz, today=today,
                                periods=[(start, end), (before_start, before_end)])
    split = scope_stats.breakdown(session=session, unit_ids=ids, start=start, end=end, tz=tz)
    by_unit = scope_stats.open_by_unit(session=session, unit_ids=ids, today=today)
    return {"unit": units[0].name, "units": len(units), "start": start, "end": end,
            "before_start": before_start, "before_end": before_end,
            "totals": now, "before": before,
            "statuses": split["statuses"],
            "areas": [(areas.get(a, a), n) for a, n in split["areas"]],
            "now": scope_stats.open_total(by_unit, ids),
            "top": scope_stats.top_overdue(by_unit, [(u.id, u.name) for u in units]),
            "today": today}
