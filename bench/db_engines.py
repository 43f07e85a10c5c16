"""The measurement behind bot/db.py's design: async engine + aiosqlite vs a sync engine on a
dedicated thread, on SQLite with WAL and synchronous=NORMAL.

    python -m bench.db_engines [--runs N] [--duration S] [--tasks T]

Each "request" is what the callback path needs from the database before a handler runs: the
dedupe upsert (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, a new key every time) and the
sender's identity (person + unit, then the roles). ``--tasks`` asyncio tasks (64) issue
requests back to back for ``--duration`` seconds against a freshly seeded demo database; the
variants alternate over ``--runs`` rounds and the medians are printed.

variants
  aiosqlite       SQLAlchemy AsyncEngine (sqlite+aiosqlite, its default pool) + AsyncSession,
                  the very statements the sync functions run (their cached builders), awaited
                  one by one in one transaction per request
  aiosqlite-1conn the same with one pooled connection (pool_size=1, max_overflow=0), i.e. one
                  writer like the project's SQLite set-up
  db.run          the project's way: bot.db.Database (sync engine, one db thread) running
                  models.dedupe.first_time + models.org.get_identity as one transaction per
                  request through Database.run
  service path    what the dispatcher does per message now: bot.turn_begins.TurnBegins,
                  whose batches (dedupe insert + identity + conversation load for every
                  message waiting, one transaction, one Database.run) grow with the load

Needs aiosqlite (``pip install -e '.[bench]'``); without it the aiosqlite variants are skipped.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

from sqlalchemy import bindparam, event, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from bot.db import Database, _sqlite_pragmas
from bot.turn_begins import TurnBegins
from models.turn_begin import Begin, Seen
from bot.sandbox.demo import seed_demo
from models import dedupe, org
from models.dedupe import ProcessedCallback
from models.migrate import upgrade
from models.org import Person, PersonRole, Unit

USERID = "demo-liaison"
Op = Callable[[int], Awaitable[None]]


@dataclass
class Result:
    variant: str
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def ops_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def drive(variant: str, op: Op, *, tasks: int, duration: float, warmup: float) -> Result:
    counter = iter(range(10**12))
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = 0.0

    async def worker() -> None:
        nonlocal errors
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                await op(next(counter))
            except Exception as exc:  # "database is locked" and the like
                errors += 1
                if errors <= 3:
                    print(f"  {variant}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                continue
            if measuring:
                latencies.append(time.perf_counter() - t0)

    if warmup:
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker() for _ in range(tasks)))
    errors, measuring = 0, True
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(*(worker() for _ in range(tasks)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return Result(variant, len(latencies), seconds, percentile(latencies, 0.50) * 1000,
                  percentile(latencies, 0.99) * 1000, errors)


# --- the variants: each returns (op, close) ---------------------------------------------------

def _now() -> datetime:
    return datetime.now(timezone.utc)


def _statements():
    """The very statements the sync functions execute (their cached builders when present),
    so the two engines differ only in how the statements reach SQLite."""
    table = ProcessedCallback.__table__
    try:
        from models.base import _insert_ignore
        insert = _insert_ignore(table, "sqlite", ("key", "received_at"))
    except ImportError:
        insert = (sqlite_insert(table)
                  .values({c: bindparam(c, type_=table.c[c].type) for c in ("key", "received_at")})
                  .on_conflict_do_nothing().returning(table.c.key))
    try:
        from models.org import _identity_query
        identity = _identity_query()
    except ImportError:
        identity = (select(Person.id, Person.name, Unit.id, Unit.name, Unit.kind, PersonRole.role)
                    .join(Unit, Unit.id == Person.unit_id)
                    .outerjoin(PersonRole, PersonRole.person_id == Person.id)
                    .where(Person.userid == bindparam("userid")))
    return insert, identity


async def make_aiosqlite(path: Path, *, one_connection: bool):
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    kwargs = {"pool_size": 1, "max_overflow": 0} if one_connection else {}
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}",
                                 connect_args={"timeout": 10}, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)  # WAL, NORMAL, busy timeout
    insert, identity_q = _statements()

    async def op(i: int) -> None:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            async with session.begin():
                conn = await session.connection()
                new = (await conn.execute(insert, {"key": f"bench:{i}",
                                                   "received_at": _now()})).first()
                if new is None:
                    raise RuntimeError("dedupe key was not new")
                rows = (await conn.execute(identity_q, {"userid": USERID})).all()
                person_id, name, unit_id, unit_name, unit_kind, _ = rows[0]
                org.Identity(person_id=person_id, userid=USERID, name=name, unit_id=unit_id,
                             unit_name=unit_name, unit_kind=unit_kind,
                             roles=frozenset(r[5] for r in rows if r[5] is not None))

    return op, engine.dispose


def _dedupe_and_identity(*, session: Session, key: str, now: datetime) -> org.Identity | None:
    if not dedupe.first_time(session=session, key=key, now=now):
        raise RuntimeError("dedupe key was not new")
    return org.get_identity(session=session, userid=USERID)


async def make_db_run(path: Path, *, service_path: bool):
    db = Database(f"sqlite:///{path}")

    async def one_hop(i: int) -> None:
        await db.run(_dedupe_and_identity, key=f"bench:{i}", now=_now())

    begins = TurnBegins(db)

    async def dispatcher_path(i: int) -> None:
        began = await begins.begin(Begin(userid=USERID, key=USERID, now=_now(),
                                         dedupe_key=f"app:msg:bench:{i}"))
        if began.seen is not Seen.NEW:
            raise RuntimeError("dedupe key was not new")

    async def close() -> None:
        db.close()

    return (dispatcher_path if service_path else one_hop), close


VARIANTS = {
    "aiosqlite": lambda p: make_aiosqlite(p, one_connection=False),
    "aiosqlite-1conn": lambda p: make_aiosqlite(p, one_connection=True),
    "db.run": lambda p: make_db_run(p, service_path=False),
    "service path": lambda p: make_db_run(p, service_path=True),
}


def seeded_template(workdir: Path) -> Path:
    path = workdir / "template.db"
    db = Database(f"sqlite:///{path}")
    try:
        upgrade(db.engine)
        db.call(seed_demo)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return path


async def run_variant(name: str, template: Path, workdir: Path, args) -> Result:
    path = workdir / f"{name.replace(' ', '_')}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, path)
    op, close = await VARIANTS[name](path)
    try:
        return await drive(name, op, tasks=args.tasks, duration=args.duration,
                           warmup=args.warmup)
    finally:
        await close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.db_engines", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="rounds over all variants (medians); 3")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement; 5")
    p.add_argument("--warmup", type=float, default=0.5, help="discarded seconds first; 0.5")
    p.add_argument("--tasks", type=int, default=64, help="concurrent asyncio tasks; 64")
    p.add_argument("--only", action="append", choices=list(VARIANTS), help="run only these")
    args = p.parse_args(argv)
    names = args.only or list(VARIANTS)
    try:
        import aiosqlite  # noqa: F401
    except ImportError:
        print("aiosqlite is not installed (pip install -e '.[bench]'): skipping its variants")
        names = [n for n in names if not n.startswith("aiosqlite")]

    load_before = "%.2f %.2f %.2f" % os.getloadavg()
    print(f"load average before: {load_before}   cpus: {os.cpu_count()}   tasks {args.tasks}, "
          f"{args.duration:g} s per measurement, runs {args.runs}")
    workdir = Path(tempfile.mkdtemp(prefix="safebot-dbbench-"))
    results: dict[str, list[Result]] = {n: [] for n in names}
    try:
        template = seeded_template(workdir)
        for run in range(args.runs):
            order = names if run % 2 == 0 else list(reversed(names))
            for name in order:
                r = asyncio.run(run_variant(name, template, workdir, args))
                results[name].append(r)
                print(f"run {run + 1}/{args.runs}  {name:<16} {r.ops_s:7.0f} ops/s  "
                      f"p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  errors {r.errors}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n== median of {args.runs} runs, {args.tasks} concurrent tasks, SQLite WAL + "
          "synchronous=NORMAL ==")
    print(f"{'variant':<16} {'ops/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}  errors")
    for name in names:
        rs = results[name]
        print(f"{name:<16} {statistics.median(r.ops_s for r in rs):7.0f}  "
              f"{statistics.median(r.p50_ms for r in rs):7.2f}  "
              f"{statistics.median(r.p99_ms for r in rs):7.2f}  {sum(r.errors for r in rs)}")
    if "db.run" in results and "aiosqlite" in results:
        base = statistics.median(r.ops_s for r in results["db.run"])
        for name in ("aiosqlite", "aiosqlite-1conn"):
            if name in results and base:
                ratio = statistics.median(r.ops_s for r in results[name]) / base
                print(f"{name} / db.run: {ratio:.2f}")
    print(f"load average before: {load_before}   after: " + "%.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
