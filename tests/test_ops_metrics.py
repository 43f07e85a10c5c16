"""``GET /metrics``: Prometheus text counting callbacks (by door and outcome, with their
latency) and pushes (by channel and result), and the outbox depth read at scrape time."""
from __future__ import annotations

import json
import time

from bot.aibot.setup import AIBOT_CALLBACK_PATH
from bot.keys import sender_key
from bot.ops.metrics import Counter, Histogram, family
from bot.pushes import enqueue_text
from bot.sandbox import aibot_bodies as bodies
from models import outbox
from tests.aibot_sandbox import CHAT, aibot_sandbox, until


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def scrape(http, url) -> dict[str, float]:
    async with http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await resp.text())


def test_the_text_format_escapes_labels_and_accumulates_buckets():
    c = Counter("x_total", "X.", ("door",))
    c.inc('a"b\\c')
    c.inc('a"b\\c', by=2)
    assert list(c.samples()) == ['x_total{door="a\\"b\\\\c"} 3']
    h = Histogram("d_seconds", "D.", ("door",), buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 3.0):
        h.observe(v, "app")
    assert family("d_seconds", "D.", "histogram", h.samples()).splitlines() == [
        "# HELP d_seconds D.", "# TYPE d_seconds histogram",
        'd_seconds_bucket{door="app",le="0.1"} 1', 'd_seconds_bucket{door="app",le="1"} 2',
        'd_seconds_bucket{door="app",le="+Inf"} 3', 'd_seconds_sum{door="app"} 3.55',
        'd_seconds_count{door="app"} 3']


async def test_app_callbacks_are_counted_by_outcome_and_timed(service):
    msg_id = service.wecom.new_msg_id()
    first = await service.wecom.text("demo-liaison", "帮助", msg_id=msg_id)
    again = await service.wecom.text("demo-liaison", "帮助", msg_id=msg_id)  # WeCom's retry
    assert first.status == again.status == 200 and first.reply_text and again.reply_xml is None
    query = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    async with service.http.post(service.url, params=query,
                                 data=b"<xml><Encrypt><![CDATA[abcd]]></Encrypt></xml>") as r:
        assert r.status == 403
    async with service.http.post(service.url, params=query, data=b"<xml/>") as r:
        assert r.status == 400
    async with service.http.get(service.server.make_url("/healthz")):
        pass  # GETs are not callbacks
    m = await scrape(service.http, service.server.make_url("/metrics"))
    for outcome in ("ok", "duplicate", "forbidden", "bad_request"):
        assert m[f'safebot_callbacks_total{{door="app",outcome="{outcome}"}}'] == 1
    assert m['safebot_callback_duration_seconds_count{door="app"}'] == 4
    assert m['safebot_callback_duration_seconds_bucket{door="app",le="+Inf"}'] == 4
    assert 0 < m['safebot_callback_duration_seconds_sum{door="app"}'] < 4 * 3


async def test_pushes_are_counted_by_channel_and_result_and_depth_read_at_scrape(
        service, demo, fake_wecom, clock):
    sender = service.server.app[sender_key]
    fake_wecom.fail_next(45009, 40008)  # one is rate limited (retried), one refused (failed)
    for key, to in (("m1", "demo-principal"), ("m2", "demo-liaison")):
        demo.call(enqueue_text, key=key, to=to, text="检查提醒", now=clock.now())
    sender.wake()
    await until(lambda: fake_wecom.api_calls >= 2 and not any(
        r.lease_owner for r in demo.call(outbox.listing)), 10, "both answered")
    demo.call(outbox.enqueue, key="w1", channel="webhook", recipient="cd-sy", msgtype="text",
              payload={"content": "群提醒"}, now=clock.now())
    demo.call(enqueue_text, key="m3", to="demo-duty", text="值班提醒", now=clock.now())
    sender.wake()
    await fake_wecom.wait_for_pushes(2)
    await until(lambda: {r.key for r in demo.call(outbox.listing, statuses=(outbox.SENT,))}
                == {"w1", "m3"}, 10, "both sent")
    m = await scrape(service.http, service.server.make_url("/metrics"))
    assert m['safebot_pushes_total{channel="app",result="sent"}'] == 1
    assert m['safebot_pushes_total{channel="app",result="retried"}'] == 1
    assert m['safebot_pushes_total{channel="app",result="failed"}'] == 1
    assert m['safebot_pushes_total{channel="webhook",result="sent"}'] == 1
    assert m['safebot_outbox_depth{status="pending"}'] == 1  # the retry, due in a minute
    assert m['safebot_outbox_depth{status="failed"}'] == 1
    assert m["safebot_outbox_oldest_pending_age_seconds"] == 0  # nothing is late
    assert m["safebot_database_up"] == 1


async def test_ai_bot_callbacks_have_their_own_door_label(tmp_path, database_url):
    async with aibot_sandbox(tmp_path / "sandbox", database_url=database_url,
                             mode="callback") as box:
        body = bodies.message(user="demo-liaison", text="帮助", chat_id=CHAT)
        query, envelope = box.callbacks.signed(json.dumps(body, ensure_ascii=False))
        async with box.http.post(AIBOT_CALLBACK_PATH, params=query, json=envelope) as resp:
            assert resp.status == 200
        async with box.http.post(AIBOT_CALLBACK_PATH, params={**query, "msg_signature": "0" * 40},
                                 json=envelope) as resp:
            assert resp.status == 403
        m = await scrape(box.http, "/metrics")
    assert m['safebot_callbacks_total{door="aibot",outcome="ok"}'] == 1
    assert m['safebot_callbacks_total{door="aibot",outcome="forbidden"}'] == 1
    assert m['safebot_callback_duration_seconds_count{door="aibot"}'] == 2
