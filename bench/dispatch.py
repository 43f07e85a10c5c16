"""Outbox dispatch throughput, and WeCom's per-member limits kept exactly.

    python -m bench.dispatch [--runs 3] [--pushes 10000] [--members 2000] [--db URL]

1. Throughput: N queued text pushes to M members are drained by one OutboxSender through the
   fake WeCom (its rate limits off) running in a separate process; prints messages per second
   and the dispatcher process's CPU share (CPU seconds / wall seconds).
2. Limits: with the limits on and a movable clock, 100 pushes to each of 20 members; prints how
   many WeCom dropped (must be 0), the most any member got in a minute and in an hour, and the
   simulated time taken against the theoretical minimum.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import insert

from bench.fake_wecom_server import CORP_ID, SECRET
from bot.clock import Clock, FakeClock
from bot.db import Database
from bot.outbox_sender import OutboxSender
from bot.render import Renderer
from bot.sandbox.fake_api import FakeWeCom
from bot.wecom_api import WeComAPI
from models.migrate import upgrade
from models.outbox import LIMITS, PENDING, OutboxMessage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(db: Database, pushes: int, members: int, now: datetime) -> None:
    rows = [{"key": f"bench:{i}", "channel": "app", "recipient": f"member-{i % members:05d}",
             "msgtype": "text", "payload": {"content": f"安全提醒 第{i}条"}, "urgent": False,
             "status": PENDING, "attempts": 0, "next_attempt_at": now, "last_error": "",
             "result": {}, "created_at": now} for i in range(pushes)]
    with db.session() as session:
        session.execute(insert(OutboxMessage.__table__), rows)


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


async def throughput_once(db_url: str, pushes: int, members: int) -> dict[str, float]:
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "bench.fake_wecom_server", "--port",
                             str(port), "--no-limits"])
    db = Database(db_url)
    try:
        upgrade(db.engine)
        with db.session() as session:
            session.execute(OutboxMessage.__table__.delete())
        fill(db, pushes, members, Clock().now())
        wait_port(port)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
            api = WeComAPI(http=http, base_url=f"http://127.0.0.1:{port}", corp_id=CORP_ID,
                           secret=SECRET, agent_id=1, clock=Clock())
            sender = OutboxSender(db=db, api=api, clock=Clock(), renderer=Renderer(),
                                  webhooks={})
            cpu0, wall0 = time.process_time(), time.perf_counter()
            sent = 0
            while True:
                n = await sender.drain_once()
                if not n:
                    break
                sent += n
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats"))
        assert stats["pushes"] == pushes and stats["dropped"] == 0, stats
        return {"msgs_per_s": sent / wall, "cpu_share": cpu / wall, "wall_s": wall}
    finally:
        fake.terminate()
        fake.wait(10)
        db.close()


async def limits_check(db_url: str, members: int = 20, per_member: int = 100) -> dict:
    clock = FakeClock(datetime(2026, 11, 23, 1, 0, 7, tzinfo=timezone.utc))
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=clock, rate_limits=True)
    app = web.Application()
    app.router.add_routes(fake.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = Database(db_url)
    try:
        upgrade(db.engine)
        with db.session() as session:
            session.execute(OutboxMessage.__table__.delete())
        fill(db, members * per_member, members, clock.now())
        start = clock.now().timestamp()
        async with aiohttp.ClientSession() as http:
            api = WeComAPI(http=http, base_url=f"http://127.0.0.1:{port}", corp_id=CORP_ID,
                           secret=SECRET, agent_id=1, clock=clock)
            sender = OutboxSender(db=db, api=api, clock=clock, renderer=Renderer(), webhooks={})
            while len(fake.pushes) < members * per_member:
                await sender.drain_once()
                clock.advance(seconds=1)
        times: dict[str, list[float]] = {}
        for p in fake.pushes:
            times.setdefault(p.to, []).append(p.at)
        per_minute = max(max(sum(1 for t in ts if s <= t < s + 60) for s in ts)
                         for ts in times.values())
        per_hour = max(len(ts) for ts in times.values())
        cap = LIMITS["app"][0][1]
        minimum = (math.ceil(per_member / cap) - 1) * 60
        return {"dropped": sum(p.dropped for p in fake.pushes), "max_per_minute": per_minute,
                "max_per_hour": per_hour, "simulated_s": fake.pushes[-1].at - start,
                "theoretical_min_s": minimum}
    finally:
        await runner.cleanup()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        results = [asyncio.run(throughput_once(url, args.pushes, args.members))
                   for _ in range(args.runs)]
        for i, r in enumerate(results, 1):
            print(f"run {i}: {r['msgs_per_s']:.0f} msgs/s, dispatcher CPU {r['cpu_share']:.0%}, "
                  f"{r['wall_s']:.1f} s")
        print(f"median: {statistics.median(r['msgs_per_s'] for r in results):.0f} msgs/s for "
              f"{args.pushes} pushes to {args.members} members; dispatcher CPU share "
              f"{statistics.median(r['cpu_share'] for r in results):.0%} (goal >= 1000 msgs/s)")
        limits = asyncio.run(limits_check(url))
        print(f"limits on: {limits['dropped']} dropped by WeCom, at most "
              f"{limits['max_per_minute']} per member per minute (cap 30), "
              f"{limits['max_per_hour']} per hour (cap 1000); simulated "
              f"{limits['simulated_s']:.0f} s vs theoretical minimum "
              f"{limits['theoretical_min_s']:.0f} s")


if __name__ == "__main__":
    main()
