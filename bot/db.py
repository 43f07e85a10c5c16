"""The database: one engine, and one place where the event loop hands work to it.

Measured (``python -m bench.db_engines``, 64 tasks, SQLite WAL, the dedupe upsert plus the
identity lookup per operation): SQLAlchemy's async engine over aiosqlite did 407–498 ops/s
with a p99 of 0.2–1 s; a plain sync engine whose work is handed, one transaction at a time,
to a dedicated thread did 1,963 ops/s with a p99 of 75 ms. So domain functions are
plain synchronous, keyword-only functions taking a ``Session``; ``Database.run`` executes one of
them as one transaction on the database thread(s) and the event loop never waits on it.
SQLite gets one thread (one writer connection, WAL, busy timeout); PostgreSQL a small pool.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

T = TypeVar("T")
PG_WORKERS = 8


def engine_url(url: str) -> str:
    """Choose the driver for a plain ``sqlite:///`` or ``postgresql://`` URL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    url = engine_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=PG_WORKERS, max_overflow=2, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def optimize(*, session: Session) -> None:
    """SQLite: ``PRAGMA optimize``, which analyzes the tables whose statistics the planner
    would use and lacks (cheap when nothing changed; SQLite's advice for long-lived
    connections). Without statistics SQLite reads a whole district's period through the unit
    index, every hazard of every unit (bench/growth.py: 统计 of 200 units, 100,000 hazards
    ~490 ms → ~60 ms). PostgreSQL: autovacuum does this; nothing to do."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA optimize"))


class Database:
    """The engine and the thread(s) that talk to it. Created and closed in ``bot.app``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.workers = 1 if self.is_sqlite else PG_WORKERS
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="db")

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run ``fn(session=..., **kwargs)`` as one transaction off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          functools.partial(self.call, fn, **kwargs))

    def call(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """The same, synchronously (CLI commands and tests)."""
        with self.session() as session:
            return fn(session=session, **kwargs)

    async def run_driver(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run ``fn(conn=..., dialect=..., **kwargs)`` with the driver's own connection (sqlite3
        or psycopg) as one transaction off the event loop: for the step every message takes
        (models.turn_begin), where a session's ~35 µs per transaction is more than its SQL."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          functools.partial(self.call_driver, fn, **kwargs))

    def call_driver(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """The same, synchronously (tests)."""
        pooled = self.engine.raw_connection()
        try:
            result = fn(conn=pooled.driver_connection, dialect=self.engine.dialect.name,
                        **kwargs)
            pooled.commit()
            return result
        except BaseException:
            pooled.rollback()
            raise
        finally:
            pooled.close()  # back to the pool

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
