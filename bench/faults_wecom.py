"""Faults around the service (issue 8, item 2): WeCom down, WeCom slow, WeCom answering 45009,
and the disk holding the SQLite file full. Afterwards nothing may be lost or duplicated and the
service must have recovered by itself.

    python -m bench.faults_wecom                                  # all four, the issue's sizes
    python -m bench.faults_wecom wecom-down --down-minutes 0.5    # a short outage
    python -m bench.faults_wecom wecom-slow wecom-45009 --limit-minutes 1
    python -m bench.faults_wecom disk-full                        # root: a tmpfs for SQLite

Every scenario runs ``safebot serve`` on a fresh SQLite file seeded with the demo district,
beside the fake WeCom in its own process (``bench/fake_wecom_server.py``, faults switched
through its ``/control``). Pushes come from real callbacks: demo-duty's ``紧急 <text>``, each
with a unique tag in its text, reaches every leader of the chain (one outbox row each). The
checks compare the outbox rows with what the fake received, one to one by recipient and
content hash:

- ``wecom-down``: WeCom answers HTTP 503 for the first half of ``--down-minutes`` and is gone
  (connection refused; the fake's process stopped) for the second half, then comes back (a new
  process: the old access token is unknown there). Callbacks keep being answered, ``/healthz``
  reports the outage and recovers, and every push is delivered exactly once, within
  ``RECOVERY_BOUND_S`` of WeCom's return (how long the backoff takes to notice is printed).
- ``wecom-slow``: every API call takes 3 s; callbacks answer well within WeCom's 5 s and all
  pushes arrive once. Then calls slower than the client's timeout: the copy sent again after
  the timeout is dropped by WeCom's duplicate check (``enable_duplicate_check``).
- ``wecom-45009``: every call but gettoken answers 45009 for ``--limit-minutes``: pushes wait,
  arrive once afterwards, and the calls made meanwhile are counted (no tight retry loop).
- ``disk-full``: the SQLite file on a small tmpfs, filled while the service runs: every
  callback still gets a 200 and a reply (the right one, or the polite error), the process stays
  up, nothing is half-written, and once space is freed the service works again by itself and
  everything it acknowledged is delivered. Needs root for ``mount``; prints SKIP otherwise.

Everything binds to 127.0.0.1, runs in a temporary directory and is stopped at the end.
Exit status 1 if any check failed.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp

from bench.callback_load import (AES_KEY, AGENT_ID, TOKEN, Server, config_toml, free_port,
                                 prepare_database, safebot_command)
from bench.fake_wecom_server import CORP_ID, SECRET, content_hash
from bot.app import APP_CALLBACK_PATH
from bot.crypto import CallbackCrypto
from bot.render import Renderer
from bot.sandbox.sender import AppCallbackSender
from bot.wecom_api import WeComAPI

SCENARIOS = ("wecom-down", "wecom-slow", "wecom-45009", "disk-full")
REPLY_LIMIT_S = 5.0          # WeCom waits 5 s for a passive reply
SLOW_REPLY_LIMIT_S = 2.5     # "well within": half of it, on a busy machine
RECOVERY_BOUND_S = 90.0      # after WeCom is back: the longest backoff (60 s) and sending
SLOW_CALL_S = 3.0
CLIENT_TIMEOUT_S = inspect.signature(WeComAPI).parameters["timeout_s"].default
URGENT_SENT = "已立即报告"
HELP_TEXT = "你可以使用"
ERROR_TEXT = Renderer().render("common/error.txt.j2").strip()
URGENT_COUNT = re.compile(r"已立即报告 (\d+) 位领导")


# --- reporting -------------------------------------------------------------------------------

class Report:
    """Checks print as they are made; ``failed`` decides the exit status."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""),
              flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def info(self, text: str) -> None:
        print(f"  info  {text}", flush=True)


# --- the service, the fake and what they say -------------------------------------------------

@dataclass
class Answer:
    kind: str            # urgent | help
    tag: str
    status: int
    text: str
    seconds: float

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and URGENT_SENT in self.text

    @property
    def polite_error(self) -> bool:
        return self.status == 200 and self.text.strip() == ERROR_TEXT

    @property
    def right(self) -> bool:
        want = URGENT_SENT if self.kind == "urgent" else HELP_TEXT
        return self.status == 200 and want in self.text


@dataclass
class Row:
    key: str
    recipient: str
    payload: dict[str, Any]
    status: str
    attempts: int
    sent_at: datetime | None
    last_error: str


def write_config(workdir: Path, db_path: Path, port: int, api_port: int) -> Path:
    return config_toml(workdir / "safebot.toml", port=port, database_url=f"sqlite:///{db_path}",
                       api_base_url=f"http://127.0.0.1:{api_port}", data_dir=workdir / "data",
                       corp_id=CORP_ID, secret=SECRET, token=TOKEN)


def _utc(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Rig:
    """``safebot serve`` and the fake WeCom as subprocesses, and an HTTP client for both."""

    def __init__(self, workdir: Path, db_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.db_path = (db_dir or workdir) / "safebot.db"
        self.port, self.api_port = free_port(), free_port()
        while self.api_port == self.port:
            self.api_port = free_port()
        self.config = write_config(workdir, self.db_path, self.port, self.api_port)
        self.service = Server("safebot serve", [*safebot_command(), "serve", "--config",
                                                str(self.config)], self.port,
                              workdir / "service.log")
        self.fake: Server | None = None
        self.fake_runs = 0
        self.archived: list[dict[str, Any]] = []  # pushes a stopped fake process had received
        self.http: aiohttp.ClientSession | None = None
        self.sender: AppCallbackSender | None = None
        self.tags = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def __aenter__(self) -> "Rig":
        self.start_fake()
        await asyncio.to_thread(prepare_database, self.config, self.db_path)
        await asyncio.to_thread(self.service.start)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.sender = AppCallbackSender(http=self.http, url=self.base + APP_CALLBACK_PATH,
                                        crypto=CallbackCrypto(TOKEN, AES_KEY, CORP_ID),
                                        agent_id=AGENT_ID)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        self.service.stop()
        self.stop_fake(archive=False)

    # -- the fake -----------------------------------------------------------------------------
    def start_fake(self) -> None:
        self.fake_runs += 1
        self.fake = Server("fake WeCom", [sys.executable, "-m", "bench.fake_wecom_server",
                                          "--port", str(self.api_port)], self.api_port,
                           self.workdir / f"fake-wecom-{self.fake_runs}.log")
        self.fake.start()

    def stop_fake(self, archive: bool = True) -> None:
        """Stop the fake's process (its port then refuses connections); keep what it got."""
        if self.fake is None:
            return
        if archive:
            self.archived += self._fetch_pushes()
        self.fake.stop()
        self.fake = None

    def _fetch_pushes(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.api + "/stats?detail=1", timeout=10) as resp:
            return json.loads(resp.read())["list"]

    async def control(self, **faults: Any) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.post(self.api + "/control", json=faults) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def calls(self) -> Counter[str]:
        assert self.http is not None
        async with self.http.get(self.api + "/control") as resp:
            return Counter((await resp.json())["calls"])

    async def pushes(self) -> list[dict[str, Any]]:
        """Every push any fake process received so far."""
        live = await asyncio.to_thread(self._fetch_pushes) if self.fake else []
        return self.archived + live

    # -- the service --------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.service.proc is not None and self.service.proc.poll() is None

    async def say(self, kind: str, text: str, tag: str = "") -> Answer:
        assert self.sender is not None
        started = time.perf_counter()
        try:
            delivery = await self.sender.text("demo-duty", text)
            status, reply = delivery.status, delivery.reply_text or ""
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, reply = 0, repr(exc)
        return Answer(kind, tag, status, reply, time.perf_counter() - started)

    async def urgent(self, prefix: str) -> Answer:
        """demo-duty's 紧急 with a tag no other message has: one push to each leader."""
        self.tags += 1
        tag = f"FAULT-{prefix}-{self.tags:03d}"
        return await self.say("urgent", f"紧急 演练 {tag} 教学楼停电", tag)

    async def help(self) -> Answer:
        return await self.say("help", "帮助")

    async def health(self) -> dict[str, Any] | None:
        assert self.http is not None
        try:
            async with self.http.get(self.base + "/healthz",
                                     timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    def rows(self, like: str = "duty-urgent:%") -> list[Row]:
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            found = conn.execute("SELECT key, recipient, payload, status, attempts, sent_at, "
                                 "last_error FROM outbox WHERE key LIKE ? ORDER BY id",
                                 (like,)).fetchall()
        finally:
            conn.close()
        return [Row(k, r, json.loads(p), s, a, _utc(at), e) for k, r, p, s, a, at, e in found]

    def tagged_rows(self, tags: set[str]) -> list[Row]:
        return [r for r in self.rows() if _tag_of(r) in tags]

    async def wait_settled(self, timeout: float, tags: set[str] | None = None) -> float | None:
        """Seconds until no urgent row (of ``tags``) is pending; None if it took longer."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            rows = self.rows() if tags is None else self.tagged_rows(tags)
            if rows and all(r.status != "pending" for r in rows):
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        return None

    async def warm_up(self, report: Report) -> None:
        """One push delivered and /healthz ok before any fault: the baseline works."""
        first = await self.urgent("warm")
        settled = await self.wait_settled(30)
        health = await self.health()
        report.check("baseline: a 紧急 is answered and its pushes delivered",
                     first.right and settled is not None,
                     f"reply in {first.seconds * 1000:.0f} ms, delivered in "
                     f"{settled if settled is None else round(settled, 1)} s")
        report.check("baseline: /healthz ok", bool(health) and health["status"] == "ok",
                     json.dumps(health, ensure_ascii=False)[:300])


def _tag_of(row: Row) -> str:
    match = re.search(r"FAULT-[\w-]+?-\d{3}", str(row.payload.get("content", "")))
    return match.group(0) if match else ""


# --- shared checks ---------------------------------------------------------------------------

def latency_line(answers: list[Answer]) -> str:
    seconds = sorted(a.seconds for a in answers) or [0.0]
    return (f"{len(answers)} callbacks, p50 {statistics.median(seconds) * 1000:.0f} ms, "
            f"max {seconds[-1] * 1000:.0f} ms")


def check_answers(report: Report, answers: list[Answer], limit_s: float, when: str) -> None:
    wrong = [a for a in answers if not a.right]
    report.check(f"callbacks {when} answered right", not wrong,
                 f"{len(answers) - len(wrong)}/{len(answers)} right"
                 + (f"; first wrong: {wrong[0].status} {wrong[0].text[:80]!r}" if wrong else ""))
    report.check(f"callbacks {when} answered within {limit_s:g} s",
                 all(a.seconds < limit_s for a in answers), latency_line(answers))


def check_deliveries(report: Report, rows: list[Row], pushes: list[dict[str, Any]]) -> None:
    """Every row sent and delivered once; no push delivered twice; none dropped."""
    delivered = Counter((p["to"], p["hash"]) for p in pushes
                        if not p["dropped"] and not p["duplicate"])
    wanted = Counter((r.recipient, content_hash(r.payload)) for r in rows)
    missing = [k for k in wanted if not delivered[k]]
    unsent = [r for r in rows if r.status != "sent"]
    twice = {k: n for k, n in delivered.items() if n > 1}
    report.check("every push delivered", bool(rows) and not missing and not unsent,
                 f"{len(rows)} outbox rows, {len(rows) - len(missing)} delivered, "
                 f"{len(unsent)} not marked sent"
                 + (f" (first: {unsent[0].status} {unsent[0].last_error[:80]!r})"
                    if unsent else ""))
    report.check("no push delivered twice", not twice,
                 f"{sum(delivered.values())} pushes delivered in all"
                 + (f"; twice: {list(twice)[:3]}" if twice else ""))
    report.check("nothing dropped by WeCom's rate limits",
                 not any(p["dropped"] for p in pushes))
    caught = sum(p["duplicate"] for p in pushes)
    report.info(f"copies dropped by WeCom's duplicate check: {caught}; attempts per row: "
                f"max {max((r.attempts for r in rows), default=0)}")


def recovery_line(rows: list[Row], since: datetime) -> tuple[float | None, float | None]:
    """Seconds from ``since`` to the first and the last push marked sent after it."""
    after = sorted((r.sent_at - since).total_seconds() for r in rows
                   if r.sent_at is not None and r.sent_at >= since)
    return (after[0], after[-1]) if after else (None, None)


async def wait_health(rig: Rig, want: str, timeout: float) -> dict[str, Any] | None:
    started = time.monotonic()
    health = None
    while time.monotonic() - started < timeout:
        health = await rig.health()
        if health and health["status"] == want:
            return health
        await asyncio.sleep(1)
    return health


async def paced(duration_s: float, every_s: float, step: Callable[[float], Awaitable[None]],
                tick_s: float = 2.0, tick: Callable[[float], Awaitable[None]] | None = None,
                ) -> None:
    """Run ``step(elapsed)`` every ``every_s`` and ``tick(elapsed)`` every ``tick_s`` for
    ``duration_s`` of wall time."""
    started = time.monotonic()
    next_step = next_tick = started
    while (now := time.monotonic()) - started < duration_s:
        if now >= next_step:
            await step(now - started)
            next_step += every_s
        if tick is not None and now >= next_tick:
            await tick(now - started)
            next_tick += tick_s
        await asyncio.sleep(max(0.05, min(next_step, next_tick if tick else next_step)
                                - time.monotonic()))


# --- scenarios -------------------------------------------------------------------------------

@dataclass
class Outage:
    """What was seen while WeCom was down."""
    answers: list[Answer] = field(default_factory=list)
    healths: list[tuple[float, dict[str, Any] | None]] = field(default_factory=list)
    alive: list[bool] = field(default_factory=list)
    calls_503: int = 0        # requests that reached the fake while it answered 503
    refused: bool = False     # the fake's process is stopped: connection refused


async def go_down(rig: Rig, down_s: float) -> Outage:
    """503 for the first half, connection refused for the second; a 紧急 and a 帮助 twenty
    times in all, /healthz every 2 s."""
    seen, before = Outage(), await rig.calls()
    await rig.control(down=True)

    async def step(elapsed: float) -> None:
        if not seen.refused and elapsed >= down_s / 2:
            seen.calls_503 = sum((await rig.calls() - before).values())
            await asyncio.to_thread(rig.stop_fake)
            seen.refused = True
        seen.answers.append(await rig.urgent("down"))
        seen.answers.append(await rig.help())

    async def tick(elapsed: float) -> None:
        seen.healths.append((elapsed, await rig.health()))
        seen.alive.append(rig.alive())

    await paced(down_s, max(down_s / 20, 2.0), step, tick=tick)
    if not seen.refused:
        await asyncio.to_thread(rig.stop_fake)
    return seen


def check_health(report: Report, seen: Outage, after: dict[str, Any] | None) -> None:
    reported = [(t, h) for t, h in seen.healths if h and h["status"] == "degraded"
                and not h["checks"].get("wecom_api", {"ok": True})["ok"]]
    statuses = Counter(h["status"] if h else None for _, h in seen.healths)
    report.check("/healthz reported the outage", bool(reported),
                 f"first {reported[0][0]:.0f} s into it: {reported[0][1]['checks']['wecom_api']}"
                 if reported else f"statuses seen: {dict(statuses)}")
    report.check("/healthz ok again after recovery", bool(after) and after["status"] == "ok",
                 json.dumps(after, ensure_ascii=False)[:300])


async def wecom_down(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    down_s = args.down_minutes * 60
    report.section(f"wecom-down: WeCom unreachable for {down_s:g} s (503, then refused)")
    async with Rig(workdir) as rig:
        await rig.warm_up(report)
        seen = await go_down(rig, down_s)
        came_back = datetime.now(timezone.utc)
        await asyncio.to_thread(rig.start_fake)  # a new process: the old token is unknown
        settled = await rig.wait_settled(RECOVERY_BOUND_S + 60)
        health_after = await wait_health(rig, "ok", 30)

        check_answers(report, seen.answers, REPLY_LIMIT_S, "during the outage")
        report.check("the service stayed up", all(seen.alive) and rig.alive())
        check_health(report, seen, health_after)
        rows = rig.rows()
        first, last = recovery_line(rows, came_back)
        report.check(f"all pushes delivered within {RECOVERY_BOUND_S:g} s of WeCom's return",
                     settled is not None and last is not None and last <= RECOVERY_BOUND_S,
                     f"first push {first and round(first, 1)} s after it (the backoff noticed), "
                     f"last {last and round(last, 1)} s")
        check_deliveries(report, rows, await rig.pushes())
        report.info(f"calls to WeCom during the 503 half ({down_s / 2:g} s): {seen.calls_503}; "
                    f"pushes queued during the outage: "
                    f"{sum(a.acknowledged for a in seen.answers)} 紧急 → "
                    f"{sum('down' in _tag_of(r) for r in rows)} rows")


async def wecom_slow(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    report.section(f"wecom-slow: every WeCom call takes {SLOW_CALL_S:g} s")
    async with Rig(workdir) as rig:
        await rig.warm_up(report)
        await rig.control(delay_s=SLOW_CALL_S)
        before = await rig.calls()
        answers: list[Answer] = []

        async def step(_: float) -> None:
            answers.extend(await asyncio.gather(rig.urgent("slow"), rig.help()))

        started = time.monotonic()
        await paced(args.slow_seconds, 0.5, step)
        settled = await rig.wait_settled(90)
        check_answers(report, answers, SLOW_REPLY_LIMIT_S, "while WeCom is slow")
        report.check("all pushes sent while WeCom is slow", settled is not None,
                     f"the last one {time.monotonic() - started:.1f} s after the first callback")
        check_deliveries(report, rig.rows(), await rig.pushes())
        report.info(f"calls while slow: {dict(await rig.calls() - before)}")

        await slower_than_the_timeout(rig, report)
        report.check("the service stayed up", rig.alive())


async def slower_than_the_timeout(rig: Rig, report: Report) -> None:
    """A call that times out at the client but that WeCom performs: the row is sent again and
    WeCom's duplicate check (``enable_duplicate_check``, 1800 s) drops the second copy."""
    delay = CLIENT_TIMEOUT_S + 2
    report.info(f"now every call takes {delay:g} s, longer than the client's "
                f"{CLIENT_TIMEOUT_S:g} s timeout")
    await rig.control(delay_s=delay)
    answer = await rig.urgent("timeout")
    rows = rig.tagged_rows({answer.tag})
    hashes = {(r.recipient, content_hash(r.payload)) for r in rows}
    deadline = time.monotonic() + delay + 10
    while time.monotonic() < deadline:  # WeCom has performed the calls the client gave up on
        got = {(p["to"], p["hash"]) for p in await rig.pushes()}
        if hashes and hashes <= got:
            break
        await asyncio.sleep(0.5)
    await rig.control(delay_s=0)
    settled = await rig.wait_settled(60, {answer.tag})
    rows = rig.tagged_rows({answer.tag})
    pushes = [p for p in await rig.pushes() if (p["to"], p["hash"]) in hashes]
    delivered = Counter((p["to"], p["hash"]) for p in pushes if not p["duplicate"])
    report.check("timed-out calls: every push delivered once",
                 answer.right and settled is not None and bool(rows)
                 and all(r.status == "sent" for r in rows)
                 and set(delivered) == hashes and all(n == 1 for n in delivered.values()),
                 f"{len(rows)} rows, attempts {sorted(r.attempts for r in rows)}, "
                 f"{sum(p['duplicate'] for p in pushes)} re-sent copies dropped by WeCom's "
                 f"duplicate check")


async def wecom_45009(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    limit_s = args.limit_minutes * 60
    report.section(f"wecom-45009: WeCom answers 45009 (API freq out of limit) for {limit_s:g} s")
    async with Rig(workdir) as rig:
        await rig.warm_up(report)
        before = await rig.calls()
        await rig.control(rate_limited=True)
        answers: list[Answer] = []

        async def step(_: float) -> None:
            answers.append(await rig.urgent("limit"))

        await paced(limit_s, max(limit_s / 10, 2.0), step)
        calls = await rig.calls() - before
        await rig.control(rate_limited=False)
        lifted = datetime.now(timezone.utc)
        settled = await rig.wait_settled(RECOVERY_BOUND_S + 60)
        check_answers(report, answers, REPLY_LIMIT_S, "while rate limited")
        rows = [r for r in rig.rows() if "limit" in _tag_of(r)]
        sends = calls["/cgi-bin/message/send"]
        ceiling = len(rows) * (math.ceil(limit_s / 60) + 1)
        report.check("no tight retry loop", sends <= ceiling,
                     f"{sends} message/send calls for {len(rows)} pushes in {limit_s:g} s "
                     f"({sends / (limit_s / 60):.1f}/min; at most one per push per minute "
                     f"allows {ceiling}); gettoken {calls['/cgi-bin/gettoken']}")
        first, last = recovery_line(rows, lifted)
        report.check(f"all delivered within {RECOVERY_BOUND_S:g} s after the limit lifted",
                     settled is not None and last is not None and last <= RECOVERY_BOUND_S,
                     f"first {first and round(first, 1)} s, last {last and round(last, 1)} s")
        report.check("no push given up", all(r.status != "failed" for r in rows))
        check_deliveries(report, rig.rows(), await rig.pushes())
        report.check("the service stayed up", rig.alive())


# --- disk full -------------------------------------------------------------------------------

def mount_tmpfs(target: Path, size_mb: int) -> str | None:
    """Mount a small tmpfs at ``target``; the reason if that is not possible."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to mount a small filesystem"
    if shutil.which("mount") is None:
        return "no mount command"
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700",
                           "tmpfs", str(target)], capture_output=True, text=True, timeout=30)
    return None if proc.returncode == 0 else f"mount failed: {proc.stderr.strip()}"


def unmount(target: Path) -> None:
    for argv in (["umount", str(target)], ["umount", "-l", str(target)]):
        if subprocess.run(argv, capture_output=True, timeout=30).returncode == 0:
            return
    print(f"  WARN  could not unmount {target}", flush=True)


def fill(directory: Path) -> int:
    """Write a filler file until the filesystem is full; the bytes written."""
    filler, written, block = directory / "filler", 0, b"\0" * 65536
    with filler.open("wb", buffering=0) as f:
        while True:
            try:
                written += f.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last few blocks
            try:
                while True:
                    written += f.write(b"\0" * size)
            except OSError:
                continue
    return written


async def disk_full(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    report.section(f"disk-full: the SQLite file on a {args.disk_mb} MB tmpfs that fills up")
    mount_point = workdir / "small-disk"
    reason = mount_tmpfs(mount_point, args.disk_mb)
    if reason:
        print(f"  SKIP  disk-full: {reason}", flush=True)
        return
    try:
        async with Rig(workdir, db_dir=mount_point) as rig:
            await disk_full_run(args, report, rig, mount_point)
        await asyncio.to_thread(integrity, report, rig.db_path)
    finally:
        unmount(mount_point)


async def disk_full_run(args: argparse.Namespace, report: Report, rig: Rig,
                        mount_point: Path) -> None:
    await rig.warm_up(report)
    in_flight = await fill_while_sending(rig, mount_point, report)
    full = [in_flight] + await while_full(rig, args.full_seconds)
    health_full = await rig.health()
    (mount_point / "filler").unlink()
    freed = time.monotonic()
    after = await until_working(rig)
    working_in = time.monotonic() - freed
    settled = await rig.wait_settled(RECOVERY_BOUND_S + 60)
    errors = [a for a in full if a.polite_error]
    report.check("disk full: callbacks failed cleanly", bool(errors) and all(
        a.status == 200 and (a.right or a.polite_error) for a in full),
        f"{len(full)} callbacks: {sum(a.right for a in full)} done, {len(errors)} polite "
        f"errors, {sum(a.status != 200 for a in full)} not 200; {latency_line(full)}")
    report.check("disk full: the service stayed up and /healthz answered",
                 rig.alive() and health_full is not None,
                 f"/healthz said {health_full and health_full['status']!r}")
    report.check("space freed: the service works again by itself", bool(after) and all(
        a.right for a in after[-3:]),
        f"{working_in:.1f} s after; {len(after)} callbacks until 3 in a row worked")
    check_state(report, rig, full + after, settled)
    report.info(f"service log ERROR lines: {log_errors(rig)}")


async def fill_while_sending(rig: Rig, mount_point: Path, report: Report) -> Answer:
    """Fill the disk while pushes are on their way to a slow WeCom: they are sent but cannot
    be marked sent. Their lease runs out, they are sent again, and WeCom's duplicate check
    must drop the copies."""
    await rig.control(delay_s=2)
    before = (await rig.calls())["/cgi-bin/message/send"]
    answer = await rig.urgent("inflight")
    deadline = time.monotonic() + 5
    while (await rig.calls())["/cgi-bin/message/send"] == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    filled = await asyncio.to_thread(fill, mount_point)
    report.info(f"filled the disk with {filled / 1e6:.1f} MB while "
                f"{(await rig.calls())['/cgi-bin/message/send'] - before} pushes were in flight")
    await asyncio.sleep(2.5)  # they come back and cannot be marked
    await rig.control(delay_s=0)
    return answer


def log_errors(rig: Rig) -> str:
    """The service's ERROR lines by what they say, for the report."""
    try:
        lines = rig.service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    found = Counter(re.sub(r"^\S+ \S+ ERROR ", "", line)[:70] for line in lines
                    if " ERROR " in line)
    return "; ".join(f"{n}x {what}" for what, n in found.most_common(4)) or "none"


async def while_full(rig: Rig, seconds: float) -> list[Answer]:
    """紧急 and 帮助 until a few have failed for want of space (or time is up)."""
    answers: list[Answer] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds and sum(a.polite_error for a in answers) < 6:
        answers.append(await rig.urgent("full"))
        answers.append(await rig.help())
    return answers


async def until_working(rig: Rig, timeout: float = 60) -> list[Answer]:
    answers: list[Answer] = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        answers.append(await rig.urgent("after"))
        if len(answers) >= 3 and all(a.right for a in answers[-3:]):
            break
        await asyncio.sleep(0.5)
    return answers


def check_state(report: Report, rig: Rig, answers: list[Answer], settled: float | None) -> None:
    """What was acknowledged is all there and delivered once; what failed left nothing."""
    urgent = [a for a in answers if a.kind == "urgent"]
    acked = {a.tag: int(URGENT_COUNT.search(a.text).group(1)) for a in urgent if a.acknowledged}
    refused = {a.tag for a in urgent if not a.acknowledged}
    rows = rig.rows()
    per_tag = Counter(_tag_of(r) for r in rows)
    short = {t: (per_tag[t], n) for t, n in acked.items() if per_tag[t] != n}
    half = {t: per_tag[t] for t in refused if per_tag[t]}
    report.check("every acknowledged 紧急 has all its pushes", not short,
                 f"{len(acked)} acknowledged" + (f"; short: {list(short.items())[:3]}"
                                                 if short else ""))
    report.check("a failed 紧急 left nothing behind", not half,
                 f"{len(refused)} failed" + (f"; rows of: {list(half)[:3]}" if half else ""))
    report.check("pushes settled after space was freed", settled is not None)
    check_deliveries(report, rows, _pushes_now(rig))


def _pushes_now(rig: Rig) -> list[dict[str, Any]]:
    return rig.archived + (rig._fetch_pushes() if rig.fake else [])


def integrity(report: Report, db_path: Path) -> None:
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    report.check("the SQLite file is intact (integrity_check)", result == "ok", result)


# --- main ------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[argparse.Namespace, Report, Path], Awaitable[None]]] = {
    "wecom-down": wecom_down, "wecom-slow": wecom_slow, "wecom-45009": wecom_45009,
    "disk-full": disk_full}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults_wecom", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"any of {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--down-minutes", type=float, default=10.0,
                   help="wecom-down: how long WeCom is unreachable (default 10)")
    p.add_argument("--limit-minutes", type=float, default=3.0,
                   help="wecom-45009: how long WeCom answers 45009 (default 3)")
    p.add_argument("--slow-seconds", type=float, default=10.0,
                   help="wecom-slow: how long callbacks are sent while WeCom is slow (10)")
    p.add_argument("--disk-mb", type=int, default=8, help="disk-full: the tmpfs size (8)")
    p.add_argument("--full-seconds", type=float, default=60.0,
                   help="disk-full: at most this long sending while the disk is full (60)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = p.parse_args(argv)
    if not 0 < args.down_minutes <= 60 or not 0 < args.limit_minutes <= 60:
        p.error("--down-minutes and --limit-minutes must be in (0, 60]")
    if not 4 <= args.disk_mb <= 256:
        p.error("--disk-mb must be 4..256")
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    return args


async def run(args: argparse.Namespace, report: Report) -> None:
    for name in args.scenarios:
        workdir = Path(tempfile.mkdtemp(prefix=f"safebot-{name}-"))
        try:
            await RUNNERS[name](args, report, workdir)
        except Exception as exc:  # a scenario that could not run is a failure, not a crash
            report.check(f"{name} ran to the end", False, repr(exc))
        finally:
            if args.keep:
                print(f"  kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):  # run the finally blocks (stop servers, unmount) on SIGTERM
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    report = Report()
    started = time.monotonic()
    asyncio.run(run(args, report))
    print(f"\n{'FAILED: ' + ', '.join(report.failed) if report.failed else 'all checks passed'}"
          f"  ({time.monotonic() - started:.0f} s)")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
