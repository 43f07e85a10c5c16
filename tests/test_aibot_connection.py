"""The long connection under trouble, against the sandbox's gateway over real WebSocket:
the gateway drops it, a newer connection kicks it off, heartbeats go unanswered, acks never
come, garbage arrives, an image URL has expired. The connection comes back, and no answer is
lost (an answer that cannot be a reply becomes a push to the chat)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest

from bot.aibot import frames
from bot.keys import dispatcher_key
from bot.sandbox import aibot_bodies as bodies
from bot.sandbox.groups import media_key
from tests.aibot_sandbox import CHAT, Box, aibot_sandbox, until


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    async with aibot_sandbox(tmp_path / "sandbox") as sandbox:
        yield sandbox


def slow_handler(box: Box, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Handlers wait for the returned event before they run."""
    gate = asyncio.Event()
    dispatcher = box.app[dispatcher_key]
    original = dispatcher.handle

    async def handle(msg):
        await gate.wait()
        return await original(msg)
    monkeypatch.setattr(dispatcher, "handle", handle)
    return gate


async def test_a_quick_answer_is_one_finished_stream(box):
    exchange = await box.gateway.say("demo-liaison", "帮助")  # 1:1 with the AI bot
    [reply] = exchange.replies
    assert reply["cmd"] == frames.RESPOND_MSG and reply["body"]["stream"]["finish"] is True
    assert "张联络" in exchange.answer


async def test_a_slow_answer_says_received_first_then_finishes(box, monkeypatch):
    gate = slow_handler(box, monkeypatch)
    exchange = await box.gateway.send(bodies.message(user="demo-liaison", text="帮助"))
    await until(lambda: exchange.streams(), 5, "the first chunk")
    first = exchange.streams()[0]
    assert first == {"id": first["id"], "finish": False,
                     "content": box.render("aibot/received.txt.j2")}
    gate.set()
    await asyncio.wait_for(exchange.done.wait(), 5)
    final = exchange.streams()[-1]
    assert final["id"] == first["id"] and final["finish"] and "张联络" in final["content"]


async def test_it_reconnects_after_the_gateway_drops_the_connection(box):
    await box.gateway.drop()
    await until(lambda: box.gateway.subscribes == 2 and box.client.connected.is_set(), 5,
                "a new subscription")
    assert "张联络" in await box.say("demo-liaison", "帮助")
    assert box.client.kicked == 0


async def test_an_answer_cut_off_mid_stream_is_pushed_after_reconnecting(box, monkeypatch):
    gate = slow_handler(box, monkeypatch)
    exchange = await box.gateway.send(bodies.message(user="demo-liaison", text="帮助",
                                                     chat_id=CHAT))
    await until(lambda: exchange.streams(), 5, "the first chunk")
    await box.gateway.drop()  # the gateway goes away while the answer is being worked on
    gate.set()
    [push] = await box.wait_pushes(f"aibot:{CHAT}", 1, timeout=10)
    assert push.msgtype == "markdown" and "张联络" in push.body["content"]
    assert box.gateway.subscribes >= 2 and exchange.answer is None


async def test_acks_that_never_come_do_not_lose_the_answer(box):
    box.gateway.withheld = {frames.RESPOND_MSG}
    await box.gateway.say("demo-liaison", "帮助", chat_id=CHAT)  # WeCom got it, said nothing
    [push] = await box.wait_pushes(f"aibot:{CHAT}", 1, timeout=10)  # sent again, to be sure
    assert "张联络" in push.body["content"]
    assert box.gateway.subscribes == 1  # the connection itself stayed up


async def test_a_newer_connection_kicks_it_off_and_it_does_not_fight(box):
    bot = box.cfg.wecom.aibot
    async with aiohttp.ClientSession() as http, http.ws_connect(bot.ws_url) as intruder:
        await intruder.send_str(frames.encode(frames.SUBSCRIBE, "sub-1", {
            "bot_id": bot.bot_id, "secret": bot.secret}))
        assert (await intruder.receive_json(timeout=5))["errcode"] == 0
        await until(lambda: box.client.kicked == 1, 5, "the kick")
        assert not box.client.connected.is_set()
        await asyncio.sleep(0.8)  # within the pause: it does not subscribe again
        assert box.gateway.subscribes == 2
    # the intruder has gone; after its pause the bot comes back
    await until(lambda: box.client.connected.is_set(), 5, "the reconnection")
    assert box.gateway.subscribes == 3
    assert "张联络" in await box.say("demo-liaison", "帮助")


async def test_unanswered_heartbeats_make_it_reconnect(box):
    box.gateway.mute_pings = True
    await until(lambda: box.gateway.subscribes >= 2, 5, "a reconnection")
    box.gateway.mute_pings = False
    await until(lambda: box.client.connected.is_set(), 5)
    assert "张联络" in await box.say("demo-liaison", "帮助")


@pytest.mark.parametrize("raw", [
    "not json", "[1, 2]", "{}", '{"cmd": "aibot_msg_callback"}',
    '{"cmd": "aibot_msg_callback", "headers": {"req_id": "r1"}, "body": {}}',
    '{"cmd": "aibot_msg_callback", "headers": {"req_id": "r2"}, "body": [1]}',
    '{"cmd": "aibot_msg_callback", "headers": {"req_id": "r3"}, "body": {"from": "x"}}',
    '{"cmd": "aibot_event_callback", "headers": {"req_id": "r4"}, "body": {"from": {"userid": '
    '"demo-liaison"}, "msgtype": "event", "event": {"eventtype": "hologram"}}}',
    '{"cmd": "aibot_surprise", "headers": {"req_id": "r5"}, "body": {}}',
    '{"headers": {"req_id": "ack-for-nothing"}, "errcode": 0, "errmsg": "ok"}',
    '{"headers": {"req_id": "r6"}, "errcode": "zero"}',
    "\u0000" * 10,
], ids=["text", "array", "empty", "no-req-id", "no-sender", "body-array", "from-string",
        "unknown-event", "unknown-cmd", "stray-ack", "bad-errcode", "nul"])
async def test_bad_frames_are_skipped_and_the_connection_stays_up(box, raw):
    await box.gateway.send_raw(raw)
    assert "张联络" in await box.say("demo-liaison", "帮助")
    assert box.gateway.subscribes == 1 and box.client.connected.is_set()


async def test_a_repeated_callback_is_answered_once(box):
    body = bodies.message(user="demo-liaison", text="帮助")
    first = await box.gateway.send(body)
    second = await box.gateway.send(body)
    await asyncio.wait_for(first.done.wait(), 5)
    await asyncio.sleep(0.3)
    assert "张联络" in first.answer and second.replies == []


async def test_an_expired_image_is_reported_and_the_message_still_handled(box):
    image = box.image()
    box.app[media_key].expire_all()
    answer = (await box.gateway.say("demo-liaison", "帮助", images=[image])).answer
    assert answer.startswith(box.render("aibot/image_failed.txt.j2", count=1))
    assert "张联络" in answer


async def test_a_group_message_without_a_mention_is_still_answered(box):
    body = bodies.message(user="demo-liaison", text="", chat_id=CHAT)
    body["text"]["content"] = "帮助"
    exchange = await box.gateway.send(body)
    await asyncio.wait_for(exchange.done.wait(), 5)
    assert "张联络" in exchange.answer


async def test_entering_the_chat_gets_the_welcome(box):
    exchange = await box.gateway.send(bodies.enter_chat(user="demo-liaison"),
                                      cmd=frames.EVENT_CALLBACK)
    await asyncio.wait_for(exchange.done.wait(), 5)
    [reply] = exchange.replies
    assert reply["cmd"] == frames.RESPOND_WELCOME
    assert reply["body"] == frames.text(box.render("common/welcome.txt.j2", name="张联络"))


async def test_a_feedback_event_gets_no_reply(box):
    body = bodies.enter_chat(user="demo-liaison")
    body["event"] = {"eventtype": "feedback_event", "feedback_event": {"id": "f1", "type": 1}}
    exchange = await box.gateway.send(body, cmd=frames.EVENT_CALLBACK)
    await asyncio.sleep(0.5)
    assert exchange.replies == []
    assert "张联络" in await box.say("demo-liaison", "帮助")


async def test_wrong_credentials_are_refused_and_retried_with_backoff(tmp_path):
    async with aibot_sandbox(tmp_path / "sb", connect=False) as box:
        box.gateway.secret = "rotated"
        await until(lambda: len([r for r in box.gateway.received
                                 if r["cmd"] == frames.SUBSCRIBE]) >= 3, 5, "three tries")
        assert not box.client.connected.is_set() and box.gateway.subscribes == 0
        box.gateway.secret = box.cfg.wecom.aibot.secret
        await box.gateway.wait_connected(5)


def test_frames_round_trip():
    frame = frames.parse(frames.encode(frames.SEND_MSG, "r", {"chatid": "c"}))
    assert (frame.cmd, frame.req_id, frame.body) == (frames.SEND_MSG, "r", {"chatid": "c"})
    ack = frames.parse(frames.encode_ack("r", 846605, "invalid req_id"))
    assert ack.is_ack and ack.errcode == 846605
    assert json.loads(frames.encode("ping", "p", {}))["headers"] == {"req_id": "p"}
    assert frames.send_msg("c", "text", {"content": "hi"}) == {
        "chatid": "c", "msgtype": "markdown", "markdown": {"content": "hi"}}
