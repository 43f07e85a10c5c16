"""One long connection per bot across instances: a PostgreSQL advisory lock picks the one
that connects. Two contenders against a gateway over real WebSocket: the holder dies (a killed
process) or loses its database session, and the other takes over within seconds (30 s in
production); they never kick each other. PostgreSQL only (SAFEBOT_TEST_POSTGRES_URL)."""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import create_engine, text

from bot.aibot.client import AibotClient
from bot.aibot.leader import Leadership
from bot.clock import Clock
from bot.db import engine_url
from bot.sandbox.aibot_gateway import AibotGateway
from bot.sandbox.fake_api import FakeWeCom
from tests.aibot_sandbox import until
from tests.conftest import PG_ENV

SECRET = "leader-test-secret"
FAST = {"retry_s": 0.3, "check_s": 0.3}
CONTENDER = """
import asyncio, sys
import aiohttp
from bot.aibot.client import AibotClient
from bot.aibot.leader import Leadership

async def main(db, ws, bot, secret):
    async def ignore(frame):
        pass
    async with aiohttp.ClientSession() as http:
        client = AibotClient(http=http, url=ws, bot_id=bot, secret=secret, on_frame=ignore,
                             heartbeat_s=0.3, backoff_s=0.1, backoff_max_s=0.5)
        await Leadership(database_url=db, bot_id=bot, retry_s=0.3, check_s=0.3).run(client.run)

asyncio.run(main(*sys.argv[1:]))
"""
needs_postgres = pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"needs {PG_ENV}")


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[AibotGateway, str]]:
    bot_id = "leader-" + secrets.token_hex(4)  # its own lock key: parallel runs cannot meet
    wecom = FakeWeCom(corp_id="c", secret="s", clock=Clock())
    gw = AibotGateway(bot_id=bot_id, secret=SECRET, wecom=wecom, path="/ws")
    app = web.Application()
    app.router.add_routes(gw.routes())
    app.on_shutdown.append(lambda _app: gw.close_all())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield gw, str(server.make_url("/ws")).replace("http://", "ws://")
    await server.close()


class Contender:
    """A stand-in for one instance: its lock, its long connection."""

    def __init__(self, http: aiohttp.ClientSession, db: str, ws: str, bot_id: str) -> None:
        async def ignore(frame):
            return None
        self.client = AibotClient(http=http, url=ws, bot_id=bot_id, secret=SECRET,
                                  on_frame=ignore, heartbeat_s=0.3, backoff_s=0.1,
                                  backoff_max_s=0.5, kicked_pause_s=30)
        self.leader = Leadership(database_url=db, bot_id=bot_id, **FAST)
        self.task = asyncio.create_task(self.leader.run(self.client.run))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@needs_postgres
async def test_a_killed_holder_is_replaced_within_seconds(gateway, postgres_url):
    gw, ws = gateway
    proc = subprocess.Popen([sys.executable, "-c", CONTENDER, postgres_url, ws, gw.bot_id,
                             SECRET], cwd=Path(__file__).parents[1])
    try:
        await until(lambda: gw.subscribes == 1, 20, "the first instance's connection")
        async with aiohttp.ClientSession() as http:
            second = Contender(http, postgres_url, ws, gw.bot_id)
            await asyncio.sleep(1.0)  # the lock is held: the second instance waits
            assert not second.leader.leading.is_set() and gw.subscribes == 1
            os.kill(proc.pid, signal.SIGKILL)  # no goodbye: the database frees the lock
            proc.wait(timeout=5)
            await until(lambda: second.client.connected.is_set(), 30, "the takeover")
            assert gw.subscribes == 2 and second.client.kicked == 0
            await second.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


@needs_postgres
async def test_a_holder_that_loses_its_lock_session_steps_down(gateway, postgres_url):
    gw, ws = gateway
    async with aiohttp.ClientSession() as http:
        first = Contender(http, postgres_url, ws, gw.bot_id)
        await until(lambda: first.client.connected.is_set(), 10, "the first connection")
        second = Contender(http, postgres_url, ws, gw.bot_id)
        await asyncio.sleep(0.8)
        assert not second.leader.leading.is_set()
        engine = create_engine(engine_url(postgres_url))
        with engine.begin() as conn:  # an admin, a failover, a network cut: the lock is gone
            conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                         {"pid": first.leader.backend_pid})
        engine.dispose()
        await until(lambda: second.client.connected.is_set(), 10, "the takeover")
        assert not first.client.connected.is_set() and not first.leader.leading.is_set()
        assert gw.subscribes == 2 and first.client.kicked == second.client.kicked == 0
        await asyncio.sleep(1.0)  # the first keeps waiting for the lock, it does not fight
        assert gw.subscribes == 2
        await first.stop()
        await second.stop()


async def test_on_sqlite_there_is_no_lock(tmp_path):
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()
    leader = Leadership(database_url=f"sqlite:///{tmp_path}/x.db", bot_id="b")
    await asyncio.wait_for(leader.run(work), 2)
    assert ran.is_set() and leader.leading.is_set()
