"""The application factory: every long-lived object is made and closed here, once."""
from __future__ import annotations

import logging
from typing import AsyncIterator, Sequence

from aiohttp import web

from bot.app_door import AppDoor
from bot.clock import Clock
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.db import Database
from bot.dispatcher import Dispatcher
from bot.keys import clock_key, config_key, db_key, dispatcher_key, door_key, renderer_key, routes_key
from bot.messages import Incoming
from bot.render import Renderer
from bot.router import Router, Routes
from handlers import ROUTERS
from models.migrate import upgrade

log = logging.getLogger(__name__)
APP_CALLBACK_PATH = "/wecom/app/callback"


def create_app(cfg: Config, *, clock: Clock | None = None,
               routers: Sequence[Router] = ROUTERS) -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[routes_key] = Routes(routers)
    app[config_key] = cfg
    app[clock_key] = clock or Clock()
    app[renderer_key] = Renderer()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_dispatcher)
    # The router freezes before start-up, so routes are fixed here and find their door later.
    app.router.add_get(APP_CALLBACK_PATH, _verify_url)
    app.router.add_post(APP_CALLBACK_PATH, _receive)
    return app


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


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    cfg = app[config_key]
    dispatcher = Dispatcher(db=app[db_key], renderer=app[renderer_key], routes=app[routes_key],
                            clock=app[clock_key], tz=cfg.tz)
    app[dispatcher_key] = dispatcher
    door = AppDoor(crypto=CallbackCrypto(cfg.wecom.app.token, cfg.wecom.app.encoding_aes_key,
                                         cfg.wecom.app.corp_id),
                   replay_window_s=cfg.wecom.replay_window_s, clock=app[clock_key],
                   db=app[db_key], dispatcher=dispatcher, renderer=app[renderer_key],
                   late_reply=_log_late_reply)
    app[door_key] = door
    yield
    await door.drain()


async def _log_late_reply(msg: Incoming, text: str) -> None:
    log.warning("late reply for %s not delivered: no push path configured", msg.user_id)
