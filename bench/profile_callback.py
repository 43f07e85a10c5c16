"""Where a callback's time goes, in process and without HTTP: the steps of
``bot.app_door.AppDoor.receive`` timed one by one, then the real door driven concurrently.

    python -m bench.profile_callback [--n N] [--tasks T] [--duration S] [--cprofile]

Part 1 runs each step N times in a row (no concurrency, so no GIL contention) on a seeded demo
database and prints microseconds per call: what each step costs the one core it runs on.
Part 2 calls ``AppDoor.receive`` itself with a minimal request object from T concurrent tasks
for S seconds: the service's ceiling without aiohttp's HTTP handling and without wrk sharing
the machine, next to the same loop over the bare steps (crypto + parse + reply only).
``--cprofile`` profiles part 2 (event-loop thread only) and prints the top functions.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from bot.app_door import AppDoor
from bot.app_xml import parse_callback, text_reply
from bot.clock import Clock
from bot.crypto import extract_encrypt
from bot.db import Database
from bot.dispatcher import Dispatcher
from bot.render import Renderer
from bot.router import Routes
from bot.sandbox.demo import seed_demo
from bench.bare_server import REPLY
from bench.callback_load import PEOPLE, SENDER, CallbackFactory
from handlers import ROUTERS
from models import dedupe
from models.turn_begin import Begin, begin_many
from models.migrate import upgrade


class _Content:
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def iter_chunked(self, n: int):
        yield self.body


class FakeRequest:
    """Just what AppDoor.receive reads from an aiohttp request."""

    remote = "127.0.0.1"

    def __init__(self, target: str, body: str) -> None:
        raw = body.encode()
        self.query = dict(parse_qsl(target.split("?", 1)[1]))
        self.content_length = len(raw)
        self.content = _Content(raw)


def make_requests(factory: CallbackFactory, n: int) -> list[FakeRequest]:
    out = []
    for line in factory.lines(n):
        target, body = line.rstrip("\n").split("\t", 1)
        out.append(FakeRequest(target, body))
    return out


def timed(label: str, n: int, fn) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"  {label:<58} {us:8.1f} us")
    return us


async def timed_async(label: str, n: int, fn) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await fn(i)
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"  {label:<58} {us:8.1f} us")
    return us


async def drive(handler, requests: list[FakeRequest], tasks: int,
                duration: float) -> tuple[int, float, float]:
    """Requests answered, wall seconds, and CPU seconds of this process (all threads): CPU
    per request is what a request costs however busy the machine is."""
    it = iter(requests)
    done = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            req = next(it, None)
            if req is None:
                return
            resp = await handler(req)
            if resp.status != 200 or not resp.text:
                raise RuntimeError(f"not a real answer: {resp.status} {resp.text!r}")
            done += 1

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done, time.perf_counter() - t0, time.process_time() - c0


async def main_async(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="safebot-profile-"))
    db = Database(f"sqlite:///{workdir / 'safebot.db'}")
    try:
        upgrade(db.engine)
        db.call(seed_demo)
        if args.inline:  # what-if: the database work on the event-loop thread (no hop)
            async def run_inline(fn, /, **kwargs):
                return db.call(fn, **kwargs)

            async def run_driver_inline(fn, /, **kwargs):
                return db.call_driver(fn, **kwargs)
            db.run, db.run_driver = run_inline, run_driver_inline
        senders = [SENDER] + [p[0] for p in PEOPLE if p[0] != SENDER][: args.senders - 1]
        factory = CallbackFactory(senders)
        crypto = factory.crypto
        renderer = Renderer()
        clock = Clock()
        dispatcher = Dispatcher(db=db, renderer=renderer, routes=Routes(ROUTERS), clock=clock,
                                tz=ZoneInfo("Asia/Shanghai"))

        async def late(msg, text):  # never called: handlers answer within the budget
            return None

        door = AppDoor(crypto=crypto, replay_window_s=300, clock=clock, db=db,
                       dispatcher=dispatcher, renderer=renderer, late_reply=late)
        n = args.n
        reqs = make_requests(factory, n)
        encs = [extract_encrypt(r.content.body) for r in reqs]
        plains = [crypto.decrypt(e) for e in encs]
        msgs = [parse_callback(p) for p in plains]
        now = datetime.now(timezone.utc)

        if not args.part2:
            print(f"part 1: each step alone, {n} calls in a row (us per call)")
            crypto_us = timed("extract_encrypt + check_signature", n, lambda i: crypto.check_signature(
                reqs[i].query["msg_signature"], reqs[i].query["timestamp"], reqs[i].query["nonce"],
                extract_encrypt(reqs[i].content.body)))
            crypto_us += timed("decrypt", n, lambda i: crypto.decrypt(encs[i]))
            crypto_us += timed("parse_callback", n, lambda i: parse_callback(plains[i]))
            crypto_us += timed("text_reply + encrypted_reply", n, lambda i: crypto.encrypted_reply(
                text_reply(to_user=SENDER, from_user=crypto.receive_id, content=REPLY), "12345"))
            timed("db.call(dedupe.first_time)  [ORM session, sync]", n,
                  lambda i: db.call(dedupe.first_time, key=f"p1:{i}", now=now))
            db_us = timed("db.call_driver(begin_many), 1 message [dedupe+identity+conv]", n,
                          lambda i: db.call_driver(begin_many, begins=[Begin(
                              userid=SENDER, key=SENDER, now=now, dedupe_key=f"p1b:{i}")]))
            batch_us = timed("db.call_driver(begin_many), 32 messages", n // 32,
                             lambda i: db.call_driver(begin_many, begins=[Begin(
                                 userid=SENDER, key=SENDER, now=now, dedupe_key=f"p1m:{i}:{j}")
                                 for j in range(32)])) / 32
            print(f"  {'':<58} {batch_us:8.1f} us per message")
            await timed_async("await db.run(no-op)  [one thread hop, idle loop]", n,
                                       lambda i: db.run(lambda session: None))
            await timed_async("await dispatcher.handle(msg)  [db.run + route + render]", n,
                              lambda i: dispatcher.handle(msgs[i], dedupe_key=f"p1c:{i}"))
            door_reqs = make_requests(factory, n)
            door_us = await timed_async("await door.receive(request)  [the whole door]", n,
                                        lambda i: door.receive(door_reqs[i]))
            print(f"  => crypto+parse+reply {crypto_us:.0f} us, database work {db_us:.0f} us "
                  f"(sync), whole door {door_us:.0f} us per request, one at a time")

        print(f"\npart 2: {args.tasks} concurrent tasks for {args.duration:g} s, no HTTP")

        async def bare(req: FakeRequest):
            from aiohttp import web
            q = req.query
            enc = extract_encrypt(req.content.body)
            if not crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], enc):
                return web.Response(status=403)
            msg = parse_callback(crypto.decrypt(enc))
            plain = text_reply(to_user=msg.user_id, from_user=crypto.receive_id, content=REPLY)
            return web.Response(text=crypto.encrypted_reply(plain, q["nonce"]))

        budget = int(args.duration * 20_000)
        count, secs, cpu = await drive(bare, make_requests(factory, budget), args.tasks,
                                       args.duration)
        bare_rps, bare_cpu = count / secs, cpu / count * 1e6
        print(f"  bare steps (no db)          {bare_rps:8.0f} req/s   cpu {bare_cpu:6.0f} us/req")
        prof = cProfile.Profile() if args.cprofile else None
        door_reqs = make_requests(factory, budget)
        if prof:
            prof.enable()
        count, secs, cpu = await drive(door.receive, door_reqs, args.tasks, args.duration)
        if prof:
            prof.disable()
        door_rps = count / secs
        door_cpu = cpu / count * 1e6
        print(f"  AppDoor.receive (SQLite)    {door_rps:8.0f} req/s   cpu {door_cpu:6.0f} us/req"
              f"   ratio {door_rps / bare_rps:.2f} (by cpu {bare_cpu / door_cpu:.2f})")
        if prof:
            print(f"\ncProfile of part 2's door run (event-loop thread only), by {args.sort}:")
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
    finally:
        db.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_callback",
                                description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="calls per step in part 1; 2000")
    p.add_argument("--tasks", type=int, default=64, help="concurrent tasks in part 2; 64")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per part-2 run; 5")
    p.add_argument("--cprofile", action="store_true", help="cProfile part 2's door run")
    p.add_argument("--sort", default="tottime", help="cProfile order: tottime (own time, "
                                                     "default) or cumulative")
    p.add_argument("--top", type=int, default=25, help="cProfile lines to print; 25")
    p.add_argument("--part2", action="store_true", help="skip part 1")
    p.add_argument("--inline", action="store_true",
                   help="what-if: run Database.run's work on the event-loop thread")
    p.add_argument("--senders", type=int, default=1,
                   help="registered senders to rotate over (1 = demo-liaison only)")
    args = p.parse_args(argv)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
