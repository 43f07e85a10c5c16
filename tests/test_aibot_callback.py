"""The AI bot in callback mode, driven by the sandbox's JSON callback sender over real HTTP:
URL verification, encrypted JSON replies, streams polled from the database, dedupe, a late
answer through response_url, card clicks, photos, and hostile requests."""
from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlmodel import Session, select

from bot.aibot import stream_state
from bot.aibot.setup import AIBOT_CALLBACK_PATH
from bot.crypto import signature
from bot.keys import dispatcher_key
from bot.sandbox import aibot_bodies as bodies
from models.aibot_stream import AibotStream
from models.photo import Photo
from tests.aibot_sandbox import CHAT, JPEG, Box, aibot_sandbox
from tests.test_aibot_connection import slow_handler


@pytest.fixture
async def box(tmp_path: Path, database_url: str) -> AsyncIterator[Box]:
    async with aibot_sandbox(tmp_path / "sandbox", database_url=database_url,
                             mode="callback") as sandbox:
        yield sandbox


def counting(box: Box, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    dispatcher = box.app[dispatcher_key]
    original = dispatcher.handle

    async def handle(msg):
        seen.append(msg.dedupe_key)
        return await original(msg)
    monkeypatch.setattr(dispatcher, "handle", handle)
    return seen


async def test_url_verification_answers_the_bare_echostr(box):
    sender = box.callbacks
    echostr = sender.crypto.encrypt("echo-1234567")
    ts, nonce = str(int(time.time())), "77"
    query = {"msg_signature": signature(sender.crypto.token, ts, nonce, echostr),
             "timestamp": ts, "nonce": nonce, "echostr": echostr}
    async with box.http.get(AIBOT_CALLBACK_PATH, params=query) as resp:
        assert resp.status == 200 and await resp.read() == b"echo-1234567"
    async with box.http.get(AIBOT_CALLBACK_PATH, params={**query, "msg_signature": "0" * 40}) as r:
        assert r.status == 403


async def test_a_text_gets_an_encrypted_signed_stream_reply(box):
    body = bodies.message(user="demo-liaison", text="帮助", chat_id=CHAT)
    query, envelope = box.callbacks.signed(json.dumps(body, ensure_ascii=False))
    async with box.http.post(AIBOT_CALLBACK_PATH, params=query, json=envelope) as resp:
        assert resp.status == 200
        raw = await resp.json()
    assert set(raw) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    assert raw["nonce"] == query["nonce"] and isinstance(raw["timestamp"], int)
    reply = box.callbacks.open_reply(raw, query["nonce"])  # checks the signature too
    assert reply["msgtype"] == "stream" and reply["stream"]["finish"] is True
    assert "张联络" in reply["stream"]["content"]
    assert reply["stream"]["content"].startswith(box.render("group/unbound.txt.j2"))


async def test_a_slow_answer_is_polled_from_the_stream_state(box, monkeypatch):
    gate = slow_handler(box, monkeypatch)
    status, first = await box.callbacks.post(bodies.message(user="demo-liaison", text="帮助"))
    assert status == 200 and first["stream"]["finish"] is False
    assert first["stream"]["content"] == box.render("aibot/received.txt.j2")
    stream_id = first["stream"]["id"]
    _, poll = await box.callbacks.post(bodies.stream_poll(user="demo-liaison", chat_id="",
                                                          stream_id=stream_id))
    assert poll["stream"] == {"id": stream_id, "finish": False,
                              "content": box.render("aibot/received.txt.j2")}
    gate.set()
    answer = await asyncio.wait_for(box.callbacks.follow("demo-liaison", "", first), 10)
    assert "张联络" in answer

    def row(*, session: Session) -> AibotStream:
        return session.get(AibotStream, stream_id)
    assert (await box.run(row)).finished  # in the database: any instance can answer a poll


async def test_a_repeated_message_runs_once_and_gets_the_same_stream(box, monkeypatch):
    seen = counting(box, monkeypatch)
    body = bodies.message(user="demo-liaison", text="帮助")
    _, first = await box.callbacks.post(body)
    _, second = await box.callbacks.post(body)
    assert len(seen) == 1
    assert second == first


async def test_an_unknown_stream_is_finished_with_an_apology(box):
    _, reply = await box.callbacks.post(bodies.stream_poll(user="demo-liaison", chat_id="",
                                                           stream_id="nope"))
    assert reply["stream"] == {"id": "nope", "finish": True,
                               "content": box.render("aibot/stream_lost.txt.j2")}


async def test_an_answer_later_than_the_polls_goes_once_to_the_response_url(box, monkeypatch):
    monkeypatch.setattr(stream_state, "POLL_WINDOW", stream_state.timedelta(seconds=0.2))
    gate = slow_handler(box, monkeypatch)
    _, first = await box.callbacks.post(bodies.message(
        user="demo-liaison", text="帮助", chat_id=CHAT,
        response_url=box.callbacks.responses.new(CHAT)))
    assert first["stream"]["finish"] is False
    await asyncio.sleep(0.3)  # WeCom has stopped polling by now
    gate.set()
    [push] = await box.wait_pushes(f"aibot:{CHAT}", 1)
    assert push.msgtype == "markdown" and "张联络" in push.body["content"]
    assert box.callbacks.responses.open == {}  # used, and only once


async def test_a_card_click_is_answered_with_the_card_updated(box):
    reply = await box.callbacks.click("demo-principal", chat_id=CHAT, task_id="t-1",
                                      key="hz:pass:YH2026-999999")
    assert reply["response_type"] == "update_template_card"
    assert reply["userids"] == ["demo-principal"]
    card = reply["template_card"]
    assert card["task_id"] == "t-1" and card["replace_text"] == "未能复查"


async def test_a_photo_in_a_mixed_message_is_decrypted_with_the_callback_key(box):
    async with box.http.post("/sandbox/api/group_messages", json={
            "from": "demo-liaison", "chat_id": CHAT, "text": "帮助",
            "image": base64.b64encode(JPEG).decode()}) as resp:
        assert resp.status == 200, await resp.text()
        assert "张联络" in (await resp.json())["replies"][0]
    photos = await box.run(lambda *, session: session.exec(select(Photo)).all())
    assert [(p.status, p.size) for p in photos] == [("stored", len(JPEG))]


async def test_enter_chat_gets_a_text_welcome(box):
    _, reply = await box.callbacks.post(bodies.enter_chat(user="demo-liaison"))
    assert reply == {"msgtype": "text", "text": {
        "content": box.render("common/welcome.txt.j2", name="张联络")}}


async def _raw(box: Box, body: bytes, query: dict | None = None) -> tuple[int, bytes]:
    query = query or {"msg_signature": "a" * 40, "timestamp": str(int(time.time())),
                      "nonce": "1"}
    async with box.http.post(AIBOT_CALLBACK_PATH, params=query, data=body) as resp:
        return resp.status, await resp.read()


async def test_hostile_requests_get_4xx_or_an_empty_200(box):
    assert (await _raw(box, b"not json"))[0] == 400
    assert (await _raw(box, b'{"encrypt": "abc"}'))[0] == 403       # bad signature
    assert (await _raw(box, b"x" * (65 * 1024)))[0] == 413
    stale = {"msg_signature": "a" * 40, "timestamp": str(int(time.time()) - 3600), "nonce": "1"}
    assert (await _raw(box, b'{"encrypt": "abc"}', stale))[0] == 403
    for plain in ("not json", "[1]", '{"msgtype": "text"}', '{"from": {"userid": 5}}'):
        query, envelope = box.callbacks.signed(plain)
        status, body = await _raw(box, json.dumps(envelope).encode(), query)
        assert (status, body) == (200, b""), plain


async def test_the_long_connection_is_off_in_callback_mode(box):
    assert box.gateway.subscribes == 0
    await asyncio.sleep(0.3)
    assert box.gateway.conn is None
