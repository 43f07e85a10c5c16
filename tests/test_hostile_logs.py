"""Secrets never appear in logs (issue 8, part 4): with every logger at DEBUG, callbacks (good,
forged, unreadable), pushes that fetch and refetch the access token, a group webhook push and
failing pushes leave no configured secret, callback token, EncodingAESKey, webhook key, access
token WeCom issued, or dashboard secret in any record's message, arguments or traceback.

Only what the service logs is checked: the fake WeCom runs without an access log here (its
log is WeCom's side, and it would print the query strings it receives).
"""
from __future__ import annotations

import logging
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.clock import Clock
from bot.sandbox.fake_api import FakeWeCom
from models import outbox
from models.dashboard_secret import get_or_create
from tests.conftest import AES_KEY, CORP_ID, SECRET, TOKEN, make_config
from tests.test_hazard_loop import pushes_to, report, say

WEBHOOK_KEY = "wh-key-1"
UNKNOWN_WEBHOOK_KEY = "wh-key-never-accepted-7f3a"


@pytest.fixture
async def fake_wecom(clock: Clock) -> AsyncIterator[FakeWeCom]:
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=clock, webhook_keys={WEBHOOK_KEY})
    app = web.Application()
    app.router.add_routes(fake.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def service(start_service, database_url, fake_wecom):
    cfg = make_config(database_url, api_base_url=fake_wecom.url,
                      webhooks={"cd-sy": WEBHOOK_KEY, "cx-zx": UNKNOWN_WEBHOOK_KEY})
    return await start_service(config=cfg)


def logged_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for ``record``."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    parts = [formatter.format(record), repr(record.args), repr(record.msg)]
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


async def test_no_secret_reaches_any_log_record(service, fake_wecom, demo, caplog):
    caplog.set_level(logging.DEBUG)
    wecom = service.wecom
    # callbacks: a good one, a forged one, an unreadable authenticated one, URL verification
    assert "你可以使用" in await say(service, "demo-liaison", "帮助")
    query, body = wecom.crypto.sign_callback(wecom.message_xml("demo-liaison", "text",
                                                               "<Content>帮助</Content>"))
    async with service.http.post(service.url, params={**query, "msg_signature": "0" * 40},
                                 data=body) as resp:
        assert resp.status == 403
    assert (await wecom.post_plaintext("<xml><unclosed></xml>")).status == 200
    echostr = wecom.crypto.encrypt("echo-42")
    from bot.crypto import signature
    async with service.http.get(service.url, params={
            "msg_signature": signature(TOKEN, query["timestamp"], query["nonce"], echostr),
            "timestamp": query["timestamp"], "nonce": query["nonce"], "echostr": echostr}) as r:
        assert r.status == 200 and await r.text() == "echo-42"

    # pushes: the first fetches a token; an expired and a refused token are fetched again
    await report(service, text="上报 化学实验室危化品混放 @实验楼二楼", level="重大",
                 area="危险化学品")
    await pushes_to(fake_wecom, "demo-principal", 1)
    fake_wecom.expire_tokens()
    await say(service, "demo-duty", "紧急 配电室冒烟，已断电")
    await pushes_to(fake_wecom, "demo-principal", 2)
    fake_wecom.fail_next(40014)
    await say(service, "demo-liaison", "紧急 楼道积水")
    await pushes_to(fake_wecom, "demo-principal", 3)
    assert fake_wecom.gettoken_calls >= 2

    # a group webhook push, one to a key WeCom refuses, and pushes while WeCom is down
    now = Clock().now()
    demo.call(outbox.enqueue, key="log-webhook-1", recipient="cd-sy", channel="webhook",
              msgtype="text", payload={"content": "群提醒"}, now=now)
    demo.call(outbox.enqueue, key="log-webhook-2", recipient="cx-zx", channel="webhook",
              msgtype="text", payload={"content": "群提醒"}, now=now)
    await say(service, "demo-liaison", "帮助")  # a turn wakes the outbox
    await pushes_to(fake_wecom, f"webhook:{WEBHOOK_KEY}", 1)
    fake_wecom.faults.down = True
    await say(service, "demo-duty", "紧急 大门损坏")
    await _until(lambda: any("503" in e for e in _errors(demo)))
    fake_wecom.faults.down = False
    await _until(lambda: any("93000" in e for e in _errors(demo)))  # the refused webhook key

    secrets = {"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY,
               "webhook key": WEBHOOK_KEY, "refused webhook key": UNKNOWN_WEBHOOK_KEY,
               "dashboard secret": demo.call(get_or_create, now=now),
               **{f"access_token {t[:6]}…": t for t in fake_wecom.tokens}}
    assert len(fake_wecom.tokens) >= 2
    leaks = [(name, record.name, record.levelname, logged_text(record)[:200])
             for record in caplog.records for name, value in secrets.items()
             if value in logged_text(record)]
    assert not leaks, "\n".join(map(str, leaks))
    assert len(caplog.records) > 10  # the capture did see the service's logging
    stored = [e for e in _errors(demo) if any(v in e for v in secrets.values())]
    assert not stored, stored  # nor in the failure reasons kept with the pushes


def _errors(db) -> list[str]:
    from sqlmodel import select
    return db.call(lambda session: [f"{m.last_error} {m.result}" for m in session.exec(
        select(outbox.OutboxMessage))])


async def _until(predicate, timeout: float = 5.0) -> None:
    import asyncio
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")
