"""APScheduler is only the clock: one job at a stable id runs every sweep every few minutes
(never on :00 or :30), from the in-memory job store, rebuilt at every start. The database is
the source of truth, so a start also runs the sweeps once at once: whatever came due while the
service was down is caught up, once."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from reminders.sweep import Sweeper

JOB_ID = "reminders:sweep"
OFFSET_MIN = 2


def sweep_minutes(every_min: int) -> str:
    """Cron minutes for a sweep every ``every_min`` minutes, skipping :00 and :30."""
    minutes = [m for m in range(OFFSET_MIN, 60, every_min) if m not in (0, 30)]
    return ",".join(str(m) for m in minutes or [OFFSET_MIN])


def make_scheduler(sweeper: Sweeper, *, tz: ZoneInfo, every_min: int) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=tz)
    scheduler.add_job(sweeper.run_once, CronTrigger(minute=sweep_minutes(every_min),
                                                    second=17, timezone=tz),
                      id=JOB_ID, replace_existing=True, coalesce=True, max_instances=1,
                      misfire_grace_time=None)
    return scheduler
