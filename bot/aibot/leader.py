"""One long connection per bot, however many instances run (a newer connection kicks the
older one off, so two would take turns kicking each other).

On PostgreSQL the instance that holds a session-level advisory lock, on a connection of its
own, runs the connection; the others try again every ``retry_s`` seconds, so one takes over
within ``retry_s`` after the holder dies (its session ends, the lock with it). The holder checks
its lock connection every ``check_s`` seconds and steps down at once if it is gone, since the
lock went with it. SQLite means one process: no lock.
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Awaitable, Callable

import psycopg
from sqlalchemy.engine import make_url

from bot.db import engine_url

log = logging.getLogger(__name__)
LOCK_BASE = 0x5AFE << 32
Work = Callable[[], Awaitable[None]]
KEEPALIVES = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5",
              "SET tcp_keepalives_count = 3")


def lock_key(bot_id: str) -> int:
    return LOCK_BASE | zlib.crc32(bot_id.encode())


def conninfo(url: str) -> str:
    return make_url(engine_url(url)).set(drivername="postgresql").render_as_string(
        hide_password=False)


class Leadership:
    def __init__(self, *, database_url: str, bot_id: str, retry_s: float = 10.0,
                 check_s: float = 10.0) -> None:
        self.url, self.key = database_url, lock_key(bot_id)
        self.retry_s, self.check_s = retry_s, check_s
        self.postgres = engine_url(database_url).startswith("postgresql")
        self.leading = asyncio.Event()
        self.backend_pid: int | None = None  # of the lock connection (tests)

    async def run(self, work: Work) -> None:
        """Run ``work`` whenever this instance holds the lock; until cancelled."""
        if not self.postgres:
            self.leading.set()
            await work()
            return
        while True:
            conn = await self._try_lock()
            if conn is not None:
                try:
                    await self._lead(conn, work)
                finally:
                    self.leading.clear()
                    await _close(conn)
            await asyncio.sleep(self.retry_s)

    async def _try_lock(self) -> psycopg.AsyncConnection | None:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo(self.url), autocommit=True,
                                                         connect_timeout=10)
        except psycopg.Error as exc:
            log.warning("AI bot: cannot reach the database for the connection lock: %s", exc)
            return None
        try:
            # If this host dies without closing the socket, the server must notice soon so
            # the lock is freed for another instance: server-side keepalives, ~25 s.
            for setting in KEEPALIVES:
                await conn.execute(setting)
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()",
                                     (self.key,))
            got, pid = await cur.fetchone()
        except psycopg.Error as exc:
            log.warning("AI bot: connection lock query failed: %s", exc)
            got = False
        if not got:
            await _close(conn)
            return None
        self.backend_pid = pid
        return conn

    async def _lead(self, conn: psycopg.AsyncConnection, work: Work) -> None:
        log.info("AI bot: this instance holds the long connection")
        self.leading.set()
        task = asyncio.create_task(work(), name="aibot-leader-work")
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.check_s)
                if done:  # work ended by itself (it should not): step down, try again
                    if not task.cancelled() and task.exception() is not None:
                        log.error("AI bot: the connection ended with %r", task.exception())
                    return
                try:
                    await asyncio.wait_for(conn.execute("SELECT 1"), self.check_s)
                except (psycopg.Error, asyncio.TimeoutError, OSError) as exc:
                    log.warning("AI bot: lost the connection lock (%s); stepping down",
                                exc or type(exc).__name__)
                    return
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _close(conn: psycopg.AsyncConnection) -> None:
    try:
        await conn.close()
    except (psycopg.Error, OSError):
        pass
