"""A sandbox with the AI bot on, for the tests/test_aibot_*.py files: the real service, its
long connection to the sandbox's gateway (or the sandbox's JSON callbacks), real WebSocket and
HTTP on a random 127.0.0.1 port, clocks shortened so every wait is a few seconds at most."""
from __future__ import annotations

import asyncio
import base64
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.aibot.setup import AibotTiming, aibot_client_key, aibot_timing_key
from bot.config import Config, load_config
from bot.keys import clock_key, db_key, renderer_key
from bot.keys import sender_key as outbox_key
from bot.sandbox import settings
from bot.sandbox.aibot_gateway import AibotGateway
from bot.sandbox.fake_api import FakeWeCom, Push
from bot.sandbox.groups import aibot_sender_key, gateway_key, media_key
from bot.sandbox.keys import wecom_key
from bot.sandbox.run import bind, build_app

FAST = AibotTiming(heartbeat_s=0.3, ack_timeout_s=2.0, backoff_s=0.1, backoff_max_s=0.5,
                   kicked_pause_s=1.5, leader_retry_s=0.3, leader_check_s=0.3, quick_s=1.0,
                   callback_budget_s=1.5)
CHAT = "wrCDSY"          # the demo group of 城东实验小学
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 8


@dataclass
class Box:
    cfg: Config
    app: web.Application
    http: aiohttp.ClientSession  # base_url: the sandbox's origin

    @property
    def gateway(self) -> AibotGateway:
        return self.app[gateway_key]

    @property
    def wecom(self) -> FakeWeCom:
        return self.app[wecom_key]

    @property
    def db(self):
        return self.app[db_key]

    @property
    def client(self):
        return self.app[aibot_client_key]

    @property
    def callbacks(self):
        return self.app[aibot_sender_key]

    def render(self, template: str, /, **data: Any) -> str:
        return self.app[renderer_key].render(template, **data)

    def image(self, content: bytes = JPEG) -> dict[str, str]:
        """An image as the long connection carries it: a short-lived URL and its own key."""
        key = os.urandom(32)
        return {"url": self.app[media_key].put(content, key),
                "aeskey": base64.b64encode(key).decode()}

    async def say(self, user: str, text: str, chat_id: str = CHAT, **kw: Any) -> str:
        exchange = await self.gateway.say(user, text, chat_id=chat_id, **kw)
        assert exchange.answer is not None
        return exchange.answer

    async def run(self, fn: Callable, **kwargs: Any) -> Any:
        return await self.db.run(fn, **kwargs)

    def now(self):
        return self.app[clock_key].now()

    def wake_outbox(self) -> None:
        self.app[outbox_key].wake()

    def pushes_to(self, to: str) -> list[Push]:
        return [p for p in self.wecom.pushes if p.to == to]

    async def wait_pushes(self, to: str, count: int, timeout: float = 5.0) -> list[Push]:
        return await until(lambda: len(self.pushes_to(to)) >= count and self.pushes_to(to),
                           timeout, f"{count} pushes to {to}")


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition"):
    """Poll ``predicate`` every 20 ms until it is truthy; its value. Bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")


@asynccontextmanager
async def aibot_sandbox(data_dir: Path, *, database_url: str | None = None,
                        mode: str = "long_connection", timing: AibotTiming = FAST,
                        connect: bool = True) -> AsyncIterator[Box]:
    sock = bind(0)
    cfg = settings.sandbox_config(load_config(None, require_app=False), data_dir=data_dir,
                                  port=sock.getsockname()[1], aibot_mode=mode)
    if database_url:
        cfg = replace(cfg, database=replace(cfg.database, url=database_url))
    app = build_app(cfg, sweeps=())
    app[aibot_timing_key] = timing
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        async with aiohttp.ClientSession(base_url=settings.origin(cfg)) as http:
            box = Box(cfg, app, http)
            if connect and mode == "long_connection":
                await box.gateway.wait_connected(10)
            yield box
    finally:
        await runner.cleanup()
        sock.close()
