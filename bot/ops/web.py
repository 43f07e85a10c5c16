"""Wiring operations into the service: ``/healthz``, ``/metrics``, the middleware that times
callbacks, and the first step of a graceful shutdown.

Shutdown order (aiohttp's runner, then our cleanup contexts in reverse): the listening sockets
close; ``on_shutdown`` pauses the reminder clock (no sweep starts while we stop); requests in
flight finish (``shutdown_timeout``); the doors drain their late handlers; the outbox sender
finishes and marks the batch it is sending (``OutboxSender.stop``); the database closes last.
"""
from __future__ import annotations

import time
from typing import Awaitable, Callable

from aiohttp import web
from apscheduler.schedulers.base import STATE_RUNNING

from bot.keys import clock_key, scheduler_key
from bot.ops.health import healthz, read_backlog
from bot.ops.metrics import CONTENT_TYPE, OUTCOME_KEY, Metrics, gauge, metrics_key

HEALTH_PATH, METRICS_PATH = "/healthz", "/metrics"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_ops(app: web.Application, *, doors: dict[str, str]) -> None:
    """Call in ``create_app``. ``doors`` maps each callback path to its door's label."""
    app[metrics_key] = Metrics()
    app.middlewares.append(_timer(dict(doors)))
    app.on_shutdown.append(_pause_clock)
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(METRICS_PATH, _metrics)


def outcome_of(status: int) -> str:
    if status == 403:
        return "forbidden"
    if 400 <= status < 500:
        return "bad_request"
    return "ok" if status < 400 else "error"


def _timer(doors: dict[str, str]):
    @web.middleware
    async def time_callbacks(request: web.Request, handler: Handler) -> web.StreamResponse:
        door = doors.get(request.path) if request.method == "POST" else None
        if door is None:
            return await handler(request)
        start, outcome = time.perf_counter(), "error"
        try:
            response = await handler(request)
            outcome = request.get(OUTCOME_KEY) or outcome_of(response.status)  # type: ignore
            return response
        except web.HTTPException as exc:
            outcome = outcome_of(exc.status)
            raise
        finally:
            request.app[metrics_key].callback(door, outcome, time.perf_counter() - start)
    return time_callbacks


async def _metrics(request: web.Request) -> web.Response:
    app = request.app
    now = app[clock_key].now()
    found, _ = await read_backlog(app, now)
    extra = [gauge("safebot_database_up", "1 if the database answered this scrape.",
                   {(): 0 if found is None else 1})]
    if found is not None:
        age = found.oldest_due_age_s(now) or 0
        extra += [gauge("safebot_outbox_depth", "Outbox rows by status (pending, failed).",
                        {(("status", "pending"),): found.pending,
                         (("status", "failed"),): found.failed}),
                  gauge("safebot_outbox_oldest_pending_age_seconds",
                        "How long the oldest due pending push has waited.", {(): age})]
    return web.Response(body=app[metrics_key].render(extra).encode(),
                        headers={"Content-Type": CONTENT_TYPE})


async def _pause_clock(app: web.Application) -> None:
    """First thing on shutdown: no new sweep starts (the cleanup context stops it later)."""
    scheduler = app.get(scheduler_key)
    if scheduler is not None and scheduler.state == STATE_RUNNING:
        scheduler.pause()
