"""The application factory: every long-lived object is made and closed here, once."""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from bot.aibot.setup import AIBOT_CALLBACK_PATH, add_aibot
from bot.app_door import AppDoor
from bot.dashboard.setup import add_dashboard
from bot.clock import Clock
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.db import Database
from bot.dispatcher import Dispatcher
from bot.keys import (api_key, clock_key, config_key, db_key, dispatcher_key, door_key,
                      photos_key, renderer_key, routes_key, scheduler_key, sender_key,
                      sweeper_key, sweeps_key)
from bot.ops.metrics import metrics_key
from bot.ops.web import add_ops
from bot.outbox_sender import OutboxSender
from bot.photos import PhotoFetcher
from bot.pushes import enqueue_text
from bot.wecom_api import WeComAPI
from bot.messages import Incoming
from bot.render import Renderer
from bot.router import Router, Routes
from bot.turn_locks import TurnLocks
from handlers import ROUTERS
from bot.workcal import load_calendar
from reminders import SWEEPS
from reminders.pusher import Pusher
from reminders.scheduler import make_scheduler
from reminders.sweep import Sweep, Sweeper
from handlers.hazard_common import Notices
from models.checklist import load_checklists
from models.migrate import upgrade

log = logging.getLogger(__name__)
APP_CALLBACK_PATH = "/wecom/app/callback"


def create_app(cfg: Config, *, clock: Clock | None = None, routers: Sequence[Router] = ROUTERS,
               sweeps: Sequence[tuple[str, Sweep]] = SWEEPS) -> web.Application:
    """The service. ``sweeps`` are the reminder sweeps the scheduler runs (tests that do not
    exercise reminders pass none, so the wall clock cannot change what they see)."""
    app = web.Application(client_max_size=1024**2)
    app[routes_key] = Routes(routers)
    app[sweeps_key] = tuple(sweeps)
    app[config_key] = cfg
    app[clock_key] = clock or Clock()
    app[renderer_key] = Renderer(cfg.tz)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_wecom)
    app.cleanup_ctx.append(_dispatcher)
    add_aibot(app)  # the AI bot (group chats): its cleanup context and callback routes
    add_dashboard(app)  # the leaders' read-only pages: their cleanup context and routes
    app.cleanup_ctx.append(_reminders)
    # The router freezes before start-up, so routes are fixed here and find their door later.
    app.router.add_get(APP_CALLBACK_PATH, _verify_url)
    app.router.add_post(APP_CALLBACK_PATH, _receive)
    add_ops(app, doors={APP_CALLBACK_PATH: "app", AIBOT_CALLBACK_PATH: "aibot"})  # /healthz
    return app


def run(app: web.Application, **options: Any) -> None:
    """Serve ``app`` until stopped (``safebot serve``, ``safebot sandbox``); ``options`` go to
    ``aiohttp.web.run_app``."""
    app.on_startup.append(_freeze_startup_objects)  # after every cleanup context's start
    web.run_app(app, access_log=None, **options)


async def _freeze_startup_objects(app: web.Application) -> None:
    """Hide what start-up made (modules, tables, templates: ~160,000 objects) from the
    garbage collector. Under load the objects of requests in flight keep reaching the oldest
    generation, so full collections ran every second or two, each walking all of start-up's
    objects: 12 pauses of up to 100 ms in 25 s of bench/callback_load.py, and its p99 went from
    ~120 ms to ~27 ms once they were frozen (each full collection then takes 2–4 ms)."""
    gc.collect()
    gc.freeze()


async def _verify_url(request: web.Request) -> web.StreamResponse:
    return await request.app[door_key].verify_url(request)


async def _receive(request: web.Request) -> web.StreamResponse:
    return await request.app[door_key].receive(request)


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[config_key].database.url)
    upgrade(db.engine)  # start-up only, before the first request
    app[db_key] = db
    yield
    db.close()


async def _wecom(app: web.Application) -> AsyncIterator[None]:
    """The WeCom API client and the outbox dispatcher running beside the server."""
    cfg = app[config_key]
    async with aiohttp.ClientSession() as http:
        api = WeComAPI(http=http, base_url=cfg.wecom.api_base_url, corp_id=cfg.wecom.app.corp_id,
                       secret=cfg.wecom.app.secret, agent_id=cfg.wecom.app.agent_id,
                       clock=app[clock_key])
        sender = OutboxSender(db=app[db_key], api=api, clock=app[clock_key],
                              renderer=app[renderer_key], webhooks=cfg.wecom.webhooks,
                              data_dir=Path(cfg.storage.data_dir),
                              on_outcome=app[metrics_key].push)
        photos = PhotoFetcher(db=app[db_key], api=api, clock=app[clock_key],
                              data_dir=Path(cfg.storage.data_dir))
        app[api_key], app[sender_key], app[photos_key] = api, sender, photos
        tasks = [asyncio.create_task(sender.run(), name="outbox-sender"),
                 asyncio.create_task(photos.run(), name="photo-fetcher")]
        yield
        await sender.stop()  # the batch in flight is sent and marked, never cut in between
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    cfg = app[config_key]
    # one instance on SQLite: the dispatcher's own locks are all there is to hold
    turn_locks = None if app[db_key].is_sqlite else TurnLocks(database_url=cfg.database.url)
    dispatcher = Dispatcher(db=app[db_key], renderer=app[renderer_key], routes=app[routes_key],
                            clock=app[clock_key], tz=cfg.tz,
                            services=_services(app),
                            photos_registered=app[photos_key].wake,
                            turn_done=app[sender_key].wake, turn_locks=turn_locks)
    app[dispatcher_key] = dispatcher
    door = AppDoor(crypto=CallbackCrypto(cfg.wecom.app.token, cfg.wecom.app.encoding_aes_key,
                                         cfg.wecom.app.corp_id),
                   replay_window_s=cfg.wecom.replay_window_s, clock=app[clock_key],
                   db=app[db_key], dispatcher=dispatcher, renderer=app[renderer_key],
                   late_reply=functools.partial(_late_reply, app))
    app[door_key] = door
    yield
    await door.drain()
    await _finish_background(dispatcher.services["background"])
    if turn_locks is not None:
        await turn_locks.close()


async def _reminders(app: web.Application) -> AsyncIterator[None]:
    """The sweeps and their clock; one catch-up run at start (what came due while down)."""
    cfg, services = app[config_key], app[dispatcher_key].services
    pusher = Pusher(renderer=app[renderer_key], tz=cfg.tz, quiet_hours=cfg.scheduler.quiet_hours,
                    groups=services.get("group_pushes"))
    sweeper = Sweeper(db=app[db_key], clock=app[clock_key], tz=cfg.tz,
                      calendar=services["calendar"], pusher=pusher, settings=cfg.reminders,
                      quiet_hours=cfg.scheduler.quiet_hours, areas=services["areas"],
                      sweeps=app[sweeps_key], wake=app[sender_key].wake, monthly=cfg.monthly)
    app[sweeper_key] = sweeper
    scheduler = make_scheduler(sweeper, tz=cfg.tz, every_min=cfg.scheduler.sweep_every_min)
    scheduler.start()
    app[scheduler_key] = scheduler  # /healthz looks at it; on_shutdown pauses it first
    catch_up = asyncio.create_task(sweeper.run_once(), name="catch-up-sweep")
    yield
    scheduler.shutdown(wait=False)
    catch_up.cancel()
    await asyncio.gather(catch_up, return_exceptions=True)


def _services(app: web.Application) -> dict[str, object]:
    """What handlers need besides the database: data loaded once at start-up (a broken
    checklist or holiday file stops the start with its message) and the push composer."""
    checklists = load_checklists()
    return {"checklists": checklists, "areas": {c.key: c.name for c in checklists.all()},
            "calendar": load_calendar(), "notices": Notices(app[renderer_key]),
            # slow work answered at once (导出台账) runs on as tasks kept here until done
            "background": set(), "wake": app[sender_key].wake,
            "data_dir": Path(app[config_key].storage.data_dir),
            "monthly": app[config_key].monthly}


async def _finish_background(tasks: set[asyncio.Task[None]], timeout: float = 10.0) -> None:
    """Give slow work a moment to finish (its result goes to the outbox), then cancel it."""
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout)
    for task in set(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _late_reply(app: web.Application, msg: Incoming, text: str) -> None:
    """A reply that missed WeCom's 5 s goes out as a push instead."""
    await app[db_key].run(enqueue_text, key=f"late:{msg.dedupe_key}", to=msg.user_id,
                          text=text, now=app[clock_key].now())
    app[sender_key].wake()
