"""Graceful shutdown: callbacks in flight are answered, late handlers finish, the outbox sender
finishes and marks the batch it is sending, and ``safebot serve`` exits 0 on SIGTERM."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

import bot.app_door
from bot.messages import Reply
from bot.router import Router
from models import outbox
from models.outbox import OutboxMessage
from tests.aibot_sandbox import until
from tests.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN

ROOT = Path(__file__).parent.parent


def slow_router(seconds: float, entered: asyncio.Event) -> Router:
    router = Router("slow")

    @router.command("慢")
    async def slow(msg, ctx):
        """慢 —— 停机测试"""
        entered.set()
        await asyncio.sleep(seconds)
        return Reply.of("common/page.txt.j2", text="慢的结果", left=0)
    return router


def all_rows(db) -> list[OutboxMessage]:
    return db.call(lambda session: list(session.exec(select(OutboxMessage)).all()))


async def test_a_callback_in_flight_is_answered_before_the_server_stops(start_service):
    entered = asyncio.Event()
    service = await start_service(routers=[slow_router(0.8, entered)])
    asking = asyncio.create_task(service.wecom.text("demo-liaison", "慢"))
    await asyncio.wait_for(entered.wait(), 5)
    await service.server.close()  # SIGTERM's path: stop listening, finish requests, clean up
    delivery = await asking
    assert delivery.status == 200 and "慢的结果" in delivery.reply_text


async def test_a_late_handler_finishes_and_its_reply_waits_in_the_outbox(
        start_service, demo, monkeypatch):
    monkeypatch.setattr(bot.app_door, "REPLY_BUDGET_S", 0.2)
    entered = asyncio.Event()
    service = await start_service(routers=[slow_router(1.0, entered)])
    delivery = await service.wecom.text("demo-liaison", "慢")
    assert "慢的结果" not in delivery.reply_text  # "working on it"
    await service.server.close()
    [late] = [r for r in all_rows(demo) if r.key.startswith("late:")]
    assert "慢的结果" in late.payload["content"] and late.lease_owner is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, *, database_url: str, api: str, port: int) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(f"""
[server]
port = {port}
[database]
url = "{database_url}"
[storage]
data_dir = "{tmp_path / 'data'}"
[wecom]
api_base_url = "{api}"
[wecom.app]
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "{SECRET}"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
[logging]
format = "json"
""", encoding="utf-8")
    return path


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "safebot serve exited early"
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("safebot serve did not become healthy")


def enqueue(db, keys: list[str], now) -> None:
    for key in keys:
        db.call(outbox.enqueue, key=key, recipient=key, msgtype="text",
                payload={"content": f"提醒 {key}"}, now=now)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_on_a_signal_with_every_push_it_sent_marked_sent(
        db, database_url, fake_wecom, clock, tmp_path, sig):
    fake_wecom.faults.delay_s = 1.5  # a slow WeCom: the first batch is in flight for a while
    first = [f"a{i}" for i in range(40)]
    enqueue(db, first, clock.now())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--config",
        str(write_config(tmp_path, database_url=database_url, api=fake_wecom.url, port=port)),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        await until(lambda: fake_wecom.api_calls >= len(first), 10, "the first batch in flight")
        enqueue(db, [f"b{i}" for i in range(20)], clock.now())  # while WeCom is slow
        proc.send_signal(sig)
        started = time.monotonic()
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        stopped_in = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert stopped_in < 15
    with contextlib.suppress(AssertionError):  # let requests that reached WeCom complete there
        await until(lambda: len(fake_wecom.pushes) == fake_wecom.api_calls, 3, "WeCom settled")
    rows = {r.key: r for r in all_rows(db)}
    delivered = {p.to for p in fake_wecom.pushes}
    assert set(first) <= delivered  # the batch in flight was finished, not cut off
    assert all(rows[key].status == outbox.SENT for key in delivered)
    assert not [r.key for r in rows.values() if r.lease_owner or r.lease_until]
    assert all(r.status == outbox.PENDING for k, r in rows.items() if k not in delivered)
    lines = stderr.decode().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)  # [logging] format = json
