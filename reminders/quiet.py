"""Quiet hours and WeCom's ask not to send exactly at :00 and :30 (doc 90236)."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.config import parse_hhmm

OFF_THE_HOUR = timedelta(minutes=3)


def _window(quiet_hours: str) -> tuple[time, time]:
    start, _, end = quiet_hours.partition("-")
    return time(*parse_hhmm(start)), time(*parse_hhmm(end))


def is_quiet(moment: datetime, tz: ZoneInfo, quiet_hours: str) -> bool:
    start, end = _window(quiet_hours)
    now = moment.astimezone(tz).time()
    return (start <= now or now < end) if start > end else (start <= now < end)


def release_at(moment: datetime, tz: ZoneInfo, quiet_hours: str) -> datetime | None:
    """When a routine push made at ``moment`` may go out: None for at once, else the end of
    the quiet hours (a few minutes past, never on :00 or :30)."""
    if not is_quiet(moment, tz, quiet_hours):
        return None
    local = moment.astimezone(tz)
    _, end = _window(quiet_hours)
    release = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if release <= local:
        release += timedelta(days=1)
    if release.minute in (0, 30):
        release += OFF_THE_HOUR
    return release.astimezone(timezone.utc)  # stored: SQLite keeps only the wall time
