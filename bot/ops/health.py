"""``GET /healthz``: is this instance able to do its work? Cheap enough to poll every few
seconds: one small query (with a timeout) and three looks at objects in memory.

status ``down`` (HTTP 503) when the database cannot be reached; ``degraded`` (200) when the
scheduler is not running, pushes are waiting while the WeCom token is stale, a due push has
waited longer than ``OUTBOX_LATE_S``, or every request to WeCom has failed for
``WECOM_DOWN_GRACE_S`` (pushes then wait in backoff, which the outbox check does not count as
late); else ``ok``.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.base import STATE_RUNNING

from bot.keys import api_key, clock_key, db_key, scheduler_key
from bot.wecom_api import REFRESH_MARGIN_S
from models.outbox_stats import Backlog, backlog
from reminders.scheduler import JOB_ID

DB_TIMEOUT_S = 2.0
OUTBOX_LATE_S = 300  # a due push normally leaves within seconds
TOKEN_GRACE_S = 60   # a push just enqueued while the token is stale is not yet a problem
WECOM_DOWN_GRACE_S = 15  # one failed request is a blip; failing this long is an outage


async def read_backlog(app: web.Application, now: datetime) -> tuple[Backlog | None, float]:
    """The outbox backlog and how long the query took (ms); None if the database failed."""
    start = time.perf_counter()
    try:
        found = await asyncio.wait_for(app[db_key].run(backlog, now=now), DB_TIMEOUT_S)
    except Exception:
        found = None
    return found, round((time.perf_counter() - start) * 1000, 1)


def scheduler_check(app: web.Application) -> dict[str, Any]:
    scheduler = app.get(scheduler_key)
    running = scheduler is not None and scheduler.state == STATE_RUNNING
    job = scheduler.get_job(JOB_ID) if running else None
    next_run = job.next_run_time.isoformat() if job and job.next_run_time else None
    return {"ok": running and next_run is not None, "running": running, "next_run": next_run}


def token_check(app: web.Application, now: datetime, waiting: bool) -> dict[str, Any]:
    """A token nobody fetched yet, or one that went stale while nothing was to be sent, is
    fine: the next push fetches one. Stale with pushes waiting means fetching fails."""
    api = app.get(api_key)
    expires_at = api.token_expires_at if api is not None else None
    if expires_at is None:
        return {"ok": True, "fresh": False, "expires_in_s": None}
    expires_in = round(expires_at - now.timestamp())
    fresh = expires_in > REFRESH_MARGIN_S
    return {"ok": fresh or not waiting, "fresh": fresh, "expires_in_s": expires_in}


def wecom_check(app: web.Application, now: datetime) -> dict[str, Any]:
    """Has WeCom failed every request (network, timeout, HTTP error) for a while? Cleared by
    the next answer, which the outbox's next retry brings."""
    api = app.get(api_key)
    since = api.failing_since if api is not None else None
    failing_for = None if since is None else max(round(now.timestamp() - since), 0)
    return {"ok": failing_for is None or failing_for < WECOM_DOWN_GRACE_S,
            "failing_for_s": failing_for}


def outbox_check(found: Backlog | None, now: datetime) -> dict[str, Any]:
    if found is None:
        return {"ok": False, "pending": None, "failed": None, "oldest_pending_age_s": None}
    age = found.oldest_due_age_s(now)
    return {"ok": age is None or age <= OUTBOX_LATE_S, "pending": found.pending,
            "failed": found.failed, "oldest_pending_age_s": None if age is None else round(age)}


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    now = app[clock_key].now()
    found, latency_ms = await read_backlog(app, now)
    waiting = found is not None and (found.oldest_due_age_s(now) or 0) > TOKEN_GRACE_S
    checks = {"database": {"ok": found is not None, "latency_ms": latency_ms},
              "scheduler": scheduler_check(app),
              "wecom_token": token_check(app, now, waiting),
              "wecom_api": wecom_check(app, now),
              "outbox": outbox_check(found, now)}
    if found is None:
        status = "down"
    else:
        status = "ok" if all(c["ok"] for c in checks.values()) else "degraded"
    return web.json_response({"status": status, "checks": checks},
                             status=503 if status == "down" else 200,
                             headers={"Cache-Control": "no-store"})
