"""What the database part of one callback costs now, and what leaner versions of it would cost.

    python -m bench.db_hot_path [--n N] [--tasks T] [--duration S]

Per message the dispatcher does one ``Database.run`` of ``_begin_turn`` with the dedupe key:
``dedupe.first_time`` (an ORM-session ``INSERT .. ON CONFLICT DO NOTHING RETURNING``),
``org.get_identity`` (two ORM selects) and ``conversation.load`` (``Session.get``) in one
transaction. This script times those against alternatives that return the same answers, on a
seeded demo database (SQLite, WAL, synchronous=NORMAL):

part 1, one call at a time (us per call, no concurrency)
part 2, T concurrent asyncio tasks for S seconds, each "request" = dedupe + identity +
        conversation, done the old way (two hops, ORM), the current way (one hop, ORM), in one
        hop with lean statements through the same Session, in one hop on the raw DBAPI
        connection, and on the raw DBAPI connection on the event-loop thread (no hop at all).

The alternatives are sketches for the design discussion, not drop-in code.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from bot.db import Database
from bot.dispatcher import _begin_turn
from bot.sandbox.demo import seed_demo
from models import conversation, dedupe, org
from models.migrate import upgrade

USERID = "demo-liaison"
# text() is cacheable; sqlite/postgresql ``insert()`` are not (inherit_cache = False), so the
# current insert_ignore is compiled afresh on every call ("[no key]" in the engine log).
INSERT_IGNORE = text("INSERT INTO processed_callback (key, received_at) VALUES (:key, :at) "
                     "ON CONFLICT DO NOTHING RETURNING key")
IDENTITY = text("SELECT p.id, p.name, u.id, u.name, u.kind, "
                "(SELECT group_concat(r.role, char(31)) FROM person_role r "
                " WHERE r.person_id = p.id) "
                "FROM person p JOIN unit u ON u.id = p.unit_id WHERE p.userid = :userid")
CONVERSATION = text("SELECT state, data, pages, updated_at FROM conversation WHERE key = :key")
RAW_INSERT = ("INSERT INTO processed_callback (key, received_at) VALUES (?, ?) "
              "ON CONFLICT DO NOTHING RETURNING key")
RAW_IDENTITY = IDENTITY.text.replace(":userid", "?")
RAW_CONVERSATION = CONVERSATION.text.replace(":key", "?")


def _identity(row, userid: str) -> org.Identity | None:
    if row is None:
        return None
    roles = frozenset(r for r in (row[5] or "").split("\x1f") if r)
    return org.Identity(person_id=row[0], userid=userid, name=row[1], unit_id=row[2],
                        unit_name=row[3], unit_kind=row[4], roles=roles)


# --- the per-request database work, four ways ----------------------------------------------

def orm_all(*, session: Session, key: str, userid: str, now: datetime):
    return _begin_turn(session=session, userid=userid, key=userid, now=now, dedupe_key=key)


def lean_first_time(*, session: Session, key: str, now: datetime) -> bool:
    return session.execute(INSERT_IGNORE, {"key": key, "at": now}).first() is not None


def lean_identity(*, session: Session, userid: str) -> org.Identity | None:
    return _identity(session.execute(IDENTITY, {"userid": userid}).first(), userid)


def lean_all(*, session: Session, key: str, userid: str, now: datetime):
    new = lean_first_time(session=session, key=key, now=now)
    ident = lean_identity(session=session, userid=userid)
    conv = session.execute(CONVERSATION, {"key": userid}).first()
    return new, ident, conv


class RawSqlite:
    """One DBAPI connection, autocommit mode, explicit BEGIN/COMMIT."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                    timeout=10)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                       "foreign_keys=ON"):
            self.conn.execute("PRAGMA " + pragma)

    def all(self, key: str, userid: str, now: datetime):
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            new = c.execute(RAW_INSERT, (key, now.isoformat(" "))).fetchone() is not None
            ident = _identity(c.execute(RAW_IDENTITY, (userid,)).fetchone(), userid)
            conv = c.execute(RAW_CONVERSATION, (userid,)).fetchone()
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return new, ident, conv

    def close(self) -> None:
        self.conn.close()


def timed(label: str, n: int, fn) -> None:
    for i in range(min(200, n)):
        fn(-i - 1)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    print(f"  {label:<62} {(time.perf_counter() - t0) / n * 1e6:7.1f} us")


async def concurrent(label: str, op, *, tasks: int, duration: float) -> None:
    counter = iter(range(10**12))
    lat: list[float] = []
    stop = time.perf_counter() + duration

    async def worker() -> None:
        while (t0 := time.perf_counter()) < stop:
            await op(next(counter))
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    secs = time.perf_counter() - t0
    lat.sort()
    p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
    print(f"  {label:<50} {len(lat) / secs:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")


async def part2(db: Database, raw: RawSqlite, args) -> None:
    loop = asyncio.get_running_loop()
    run = 0

    def key(i: int) -> str:
        return f"p2:{run}:{i}"

    async def two_hops(i: int):
        now = datetime.now(timezone.utc)
        await db.run(dedupe.first_time, key=key(i), now=now)
        return await db.run(_begin_turn, userid=USERID, key=USERID, now=now)

    async def orm_one_hop(i: int):
        return await db.run(orm_all, key=key(i), userid=USERID, now=datetime.now(timezone.utc))

    async def lean_one_hop(i: int):
        return await db.run(lean_all, key=key(i), userid=USERID, now=datetime.now(timezone.utc))

    async def raw_one_hop(i: int):
        return await loop.run_in_executor(db._executor, functools.partial(
            raw.all, key(i), USERID, datetime.now(timezone.utc)))

    async def raw_on_loop(i: int):
        return raw.all(key(i), USERID, datetime.now(timezone.utc))

    for label, op in (("old: 2 hops, ORM (first_time, _begin_turn)", two_hops),
                      ("current: 1 hop, ORM _begin_turn(dedupe_key=)", orm_one_hop),
                      ("1 hop, lean text() statements via Session", lean_one_hop),
                      ("1 hop, raw sqlite3 connection", raw_one_hop),
                      ("no hop: raw sqlite3 on the event loop", raw_on_loop)):
        run += 1
        await concurrent(label, op, tasks=args.tasks, duration=args.duration)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.db_hot_path",
                                description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="calls per step in part 1; 2000")
    p.add_argument("--tasks", type=int, default=64, help="concurrent tasks in part 2; 64")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per part-2 run; 3")
    args = p.parse_args(argv)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="safebot-hotpath-"))
    db = Database(f"sqlite:///{workdir / 'safebot.db'}")
    raw = None
    try:
        upgrade(db.engine)
        db.call(seed_demo)
        raw = RawSqlite(workdir / "safebot.db")
        now = datetime.now(timezone.utc)
        assert db.call(org.get_identity, userid=USERID) == db.call(lean_identity, userid=USERID)
        assert raw.all("check", USERID, now)[1] == db.call(org.get_identity, userid=USERID)
        n = args.n
        print(f"part 1: one call at a time, {n} calls (us per call)")
        timed("db.call(dedupe.first_time)            [now: ORM, uncached insert]", n,
              lambda i: db.call(dedupe.first_time, key=f"a{i}", now=now))
        timed("db.call(lean_first_time)              [text() insert]", n,
              lambda i: db.call(lean_first_time, key=f"b{i}", now=now))
        timed("db.call(org.get_identity)             [now: 2 ORM selects]", n,
              lambda i: db.call(org.get_identity, userid=USERID))
        timed("db.call(lean_identity)                [1 text() select]", n,
              lambda i: db.call(lean_identity, userid=USERID))
        timed("db.call(conversation.load)            [now: Session.get]", n,
              lambda i: db.call(conversation.load, key=USERID, now=now))
        timed("db.call(no-op)                        [Session, no statement]", n,
              lambda i: db.call(lambda session: None))
        timed("db.call(_begin_turn, dedupe_key=)  [now: 1 txn, ORM]", n,
              lambda i: db.call(orm_all, key=f"c{i}", userid=USERID, now=now))
        timed("db.call(lean_all)     the same, text() statements", n,
              lambda i: db.call(lean_all, key=f"d{i}", userid=USERID, now=now))
        timed("raw sqlite3           the same, DBAPI connection", n,
              lambda i: raw.all(f"e{i}", USERID, now))
        print(f"\npart 2: {args.tasks} concurrent tasks, {args.duration:g} s each; "
              "one request = dedupe + identity + conversation")
        asyncio.run(part2(db, raw, args))
    finally:
        if raw is not None:
            raw.close()
        db.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
