"""WeCom misbehaving while the service runs (issue 8, item 2; bench/faults_wecom.py runs the
same faults at full length against ``safebot serve``): down, slow, answering 45009. Callbacks
never wait on WeCom, and afterwards every push has arrived exactly once, by itself.

Pushes come from demo-duty's ``紧急`` (one row to every leader of the chain). The clock is a
``FakeClock``: backoffs are skipped by moving it, the outages themselves last real seconds.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Callable

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.clock import FakeClock
from bot.ops.health import WECOM_DOWN_GRACE_S
from bot.outbox_sender import MAX_BACKOFF, OutboxSender
from bot.render import Renderer
from bot.sandbox.fake_api import FakeWeCom
from bot.wecom_api import WeComAPI
from models import outbox
from models.outbox import OutboxMessage
from tests.conftest import AGENT_ID, CORP_ID, SECRET

URGENT_SENT = "已立即报告"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def wecom_finishing_late(clock: FakeClock):
    """The fake WeCom served as WeCom serves: a call whose client gave up waiting is still
    carried out (the test server of ``fake_wecom`` cancels it instead)."""
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=clock)

    @web.middleware
    async def body_first(request: web.Request, handler) -> web.StreamResponse:
        await request.read()  # the whole request has arrived before WeCom is slow
        return await handler(request)

    app = web.Application(middlewares=[body_first])
    app.router.add_routes(fake.routes())
    runner = web.AppRunner(app)  # handler_cancellation off, as in aiohttp's default
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def urgent_rows(db) -> list[OutboxMessage]:
    def read(*, session):
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.key.startswith("duty-urgent:")).order_by(OutboxMessage.id)).all())
    return db.call(read)


async def urgent(service, text: str) -> tuple[str, float]:
    """demo-duty's 紧急: its passive reply and how long it took."""
    started = time.perf_counter()
    delivery = await service.wecom.text("demo-duty", f"紧急 {text}")
    return delivery.reply_text or "", time.perf_counter() - started


async def healthz(service) -> dict:
    async with service.http.get(service.server.make_url("/healthz")) as resp:
        return await resp.json()


def assert_each_delivered_once(rows: list[OutboxMessage], fake_wecom) -> None:
    assert rows and all(r.status == outbox.SENT for r in rows)
    delivered = Counter((p.to, p.body["content"]) for p in fake_wecom.pushes
                        if not (p.dropped or p.duplicate))
    assert delivered == Counter((r.recipient, r.payload["content"]) for r in rows)


async def test_wecom_down_callbacks_answered_healthz_degraded_then_all_pushes_once(
        start_service, demo, fake_wecom, clock):
    service = await start_service()
    fake_wecom.faults.down = True
    for i in range(3):
        reply, seconds = await urgent(service, f"停电演练{i}")
        assert URGENT_SENT in reply and seconds < 2  # a passive reply needs no WeCom
    count = len(urgent_rows(demo))
    assert count >= 3
    await until(lambda: all(r.attempts >= 1 and r.last_error for r in urgent_rows(demo)), 5,
                "every push tried once")
    calls = fake_wecom.api_calls + fake_wecom.gettoken_calls
    await asyncio.sleep(1.2)  # still down: each row waits out its backoff, nothing spins
    assert fake_wecom.api_calls + fake_wecom.gettoken_calls == calls
    clock.advance(seconds=WECOM_DOWN_GRACE_S + 5)
    health = await healthz(service)
    assert health["status"] == "degraded" and not health["checks"]["wecom_api"]["ok"]
    assert health["checks"]["wecom_api"]["failing_for_s"] >= WECOM_DOWN_GRACE_S
    assert not [p for p in fake_wecom.pushes if not p.dropped]

    fake_wecom.faults.down = False
    clock.advance(seconds=MAX_BACKOFF.total_seconds())  # the longest wait after WeCom is back
    await fake_wecom.wait_for_pushes(count, timeout=10)
    await until(lambda: all(r.status == outbox.SENT for r in urgent_rows(demo)), 5, "marked")
    assert_each_delivered_once(urgent_rows(demo), fake_wecom)
    health = await healthz(service)
    assert health["status"] == "ok" and health["checks"]["wecom_api"] == {
        "ok": True, "failing_for_s": None}


async def test_after_a_ten_minute_outage_every_push_leaves_within_a_minute_of_recovery(
        demo, fake_wecom, clock):
    """The backoff is capped (``MAX_BACKOFF``): a long outage does not mean a long wait after
    it. A push is queued every 30 s of the outage; the sender looks every 5 s."""
    async with aiohttp.ClientSession() as http:
        api = WeComAPI(http=http, base_url=fake_wecom.url, corp_id=CORP_ID, secret=SECRET,
                       agent_id=AGENT_ID, clock=clock)
        sender = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={})
        fake_wecom.faults.down = True
        for second in range(0, 600, 5):
            if second % 30 == 0:
                demo.call(outbox.enqueue, key=f"k{second}", recipient="demo-principal",
                          msgtype="text", payload={"content": f"提醒{second}"}, now=clock.now())
            await sender.drain_once()
            clock.advance(seconds=5)
        fake_wecom.faults.down = False
        waited = 0
        while len(demo.call(outbox.listing, statuses=(outbox.PENDING,))) and waited < 600:
            await sender.drain_once()
            clock.advance(seconds=1)
            waited += 1
    assert waited <= MAX_BACKOFF.total_seconds() <= 60
    sent = demo.call(outbox.listing, statuses=(outbox.SENT,))
    assert len(sent) == 20
    assert_each_delivered_once(sent, fake_wecom)


async def test_wecom_slow_never_slows_a_callback_and_every_push_arrives_once(
        start_service, demo, fake_wecom, clock):
    service = await start_service()
    fake_wecom.faults.delay_s = 3.0  # every message/send takes 3 s
    reply, _ = await urgent(service, "停电演练0")
    assert URGENT_SENT in reply
    await until(lambda: fake_wecom.api_calls > 0, 5, "pushes in flight")
    for i in (1, 2):  # while the first ones are still on their way
        reply, seconds = await urgent(service, f"停电演练{i}")
        assert URGENT_SENT in reply and seconds < 2
    count = len(urgent_rows(demo))
    await fake_wecom.wait_for_pushes(count, timeout=20)
    await until(lambda: all(r.status == outbox.SENT for r in urgent_rows(demo)), 5, "marked")
    assert_each_delivered_once(urgent_rows(demo), fake_wecom)
    assert not [p for p in fake_wecom.pushes if p.duplicate]  # 3 s is within the timeout


async def test_a_call_wecom_performs_after_the_client_timed_out_reaches_the_person_once(
        demo, wecom_finishing_late, clock):
    """The retry of a timed-out send is WeCom's duplicate: ``enable_duplicate_check`` (1800 s)
    makes WeCom drop it, so the person sees the push once."""
    wecom = wecom_finishing_late
    demo.call(outbox.enqueue, key="k1", recipient="demo-principal", msgtype="text",
              payload={"content": "停电演练"}, now=clock.now())
    async with aiohttp.ClientSession() as http:
        api = WeComAPI(http=http, base_url=wecom.url, corp_id=CORP_ID, secret=SECRET,
                       agent_id=AGENT_ID, clock=clock, timeout_s=0.5)
        sender = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={})
        await api.token()
        wecom.faults.delay_s = 1.0  # slower than the client waits
        await sender.drain_once()
        [row] = demo.call(outbox.listing)
        assert row.status == outbox.PENDING and "Timeout" in row.last_error
        await until(lambda: len(wecom.pushes) == 1, 3, "WeCom finishing the call")
        wecom.faults.delay_s = 0.0
        clock.advance(seconds=6)  # the first backoff
        assert await sender.drain_once() == 1
    [row] = demo.call(outbox.listing, statuses=(outbox.SENT,))
    assert row.attempts == 2
    assert len(wecom.pushes_to("demo-principal")) == 1
    assert [p.duplicate for p in wecom.pushes] == [False, True]


async def test_wecom_45009_defers_pushes_without_a_retry_loop_then_delivers_each_once(
        start_service, demo, fake_wecom, clock):
    service = await start_service()
    fake_wecom.fail_next(*[45009] * 1000)  # rate limited until the test clears it
    for i in range(2):
        reply, _ = await urgent(service, f"停电演练{i}")
        assert URGENT_SENT in reply
    count = len(urgent_rows(demo))
    await until(lambda: all("45009" in r.last_error for r in urgent_rows(demo)), 5,
                "every push answered 45009")
    assert fake_wecom.api_calls == count
    clock.advance(seconds=30)
    await asyncio.sleep(1.2)  # the sender polls at least once a second: nothing is due
    assert fake_wecom.api_calls == count
    clock.advance(seconds=31)  # a minute after the 45009: one more try each, still limited
    await until(lambda: fake_wecom.api_calls >= 2 * count, 5, "a second try")
    await until(lambda: all(r.attempts == 2 and r.lease_owner is None
                            for r in urgent_rows(demo)), 5, "the second 45009 recorded")
    assert fake_wecom.api_calls == 2 * count

    fake_wecom.faults.errors.clear()
    clock.advance(seconds=61)
    await fake_wecom.wait_for_pushes(count, timeout=10)
    await until(lambda: all(r.status == outbox.SENT for r in urgent_rows(demo)), 5, "marked")
    assert_each_delivered_once(urgent_rows(demo), fake_wecom)
    assert fake_wecom.api_calls == 3 * count
