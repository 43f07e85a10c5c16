"""One turn per conversation at a time across instances.

In one process ``KeyedLocks`` serialises a user's messages; two instances behind a load
balancer do not share it, so the same user's double-tapped 确认 could reach both and file the
hazard twice (both load the same conversation state; bench/two_instances.py --double-tap). On
PostgreSQL a turn therefore also holds a session-level advisory lock on the conversation key.
All of an instance's turn locks live on one connection of their own, outside the pool (a turn
holding a pooled connection while waiting for another one could starve the pool). Session
locks of one connection do not exclude each other, which is fine: inside one instance
``KeyedLocks`` already keeps a key to one turn. The locks go with the connection: a killed
instance frees its keys at once, and a lost connection is opened anew on the next turn.

SQLite is one process: nothing to do.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import psycopg

from bot.aibot.leader import KEEPALIVES, conninfo
from bot.db import engine_url

log = logging.getLogger(__name__)
TURN_CLASS = 0x5AFE_0C0  # first key of the two-int advisory lock space: conversation turns
TRY = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
UNLOCK = "SELECT pg_advisory_unlock(%s, hashtext(%s))"


class TurnLocks:
    """Created and closed with the dispatcher in ``bot.app``."""

    def __init__(self, *, database_url: str, wait_s: float = 30.0, poll_s: float = 0.01
                 ) -> None:
        self.url = database_url
        self.postgres = engine_url(database_url).startswith("postgresql")
        self.wait_s, self.poll_s = wait_s, poll_s
        self._conn: psycopg.AsyncConnection | None = None
        self._connecting = asyncio.Lock()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        if not self.postgres:
            yield
            return
        conn = await self._acquire(key)
        try:
            yield
        finally:
            if conn is not None:
                await asyncio.shield(self._release(conn, key))

    async def _acquire(self, key: str) -> psycopg.AsyncConnection | None:
        """The connection holding ``key``'s lock; None if the database cannot be asked (the
        turn then fails on its own queries) or another instance held it for ``wait_s``."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self.wait_s, self.poll_s
        while True:
            try:
                conn = await self._connection()
                ask = asyncio.ensure_future(conn.execute(TRY, (TURN_CLASS, key)))
                try:
                    got = (await (await asyncio.shield(ask)).fetchone())[0]
                except asyncio.CancelledError:
                    ask.add_done_callback(lambda _: asyncio.ensure_future(
                        self._release(conn, key)))  # it may have been granted meanwhile
                    raise
            except (psycopg.Error, OSError) as exc:
                log.warning("turn lock for %s not taken: %s", key, exc)
                await self._drop()
                return None
            if got:
                return conn
            if loop.time() >= deadline:
                log.warning("turn lock for %s still held elsewhere after %.0f s; going on",
                            key, self.wait_s)
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _release(self, conn: psycopg.AsyncConnection, key: str) -> None:
        if conn is not self._conn:
            return  # that connection is gone, and its locks with it
        try:
            await conn.execute(UNLOCK, (TURN_CLASS, key))
        except (psycopg.Error, OSError) as exc:
            log.warning("turn lock for %s not released (%s); reconnecting", key, exc)
            await self._drop()

    async def _connection(self) -> psycopg.AsyncConnection:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    conninfo(self.url), autocommit=True, connect_timeout=10)
                for setting in KEEPALIVES:  # a dead host's locks must not outlive it long
                    await conn.execute(setting)
                self._conn = conn
            return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except (psycopg.Error, OSError):
                pass

    async def close(self) -> None:
        await self._drop()
