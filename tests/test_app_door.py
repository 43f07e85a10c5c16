"""The self-built app door, driven over HTTP with WeCom's own crypto."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import func, select

from bot.app_xml import parse_callback
from bot.config import AppConfig
from bot.crypto import CallbackCrypto, signature
from models.dedupe import ProcessedCallback
from tests.conftest import make_config

VECTORS = json.loads((Path(__file__).parent / "wecom_official_sample.json").read_text())


@pytest.fixture
async def official(start_service, database_url, fake_wecom):
    """The service configured with the documentation's sample credentials (2014 timestamps)."""
    app = AppConfig(corp_id=VECTORS["receive_id"], agent_id=218, secret="s",
                    token=VECTORS["token"], encoding_aes_key=VECTORS["encoding_aes_key"])
    cfg = make_config(database_url, replay_window_s=0, api_base_url=fake_wecom.url)
    cfg = replace(cfg, wecom=replace(cfg.wecom, app=app))
    return await start_service(config=cfg)


def test_official_sample_decrypts_to_the_documented_plaintext():
    crypto = CallbackCrypto(VECTORS["token"], VECTORS["encoding_aes_key"], VECTORS["receive_id"])
    q = VECTORS["callback"]["query"]
    body = VECTORS["callback"]["body"]
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], encrypt)
    assert crypto.decrypt(encrypt) == VECTORS["callback"]["expected_plaintext"]


async def test_official_url_verification_answers_the_bare_plaintext(official):
    async with official.http.get(official.url, params=VECTORS["url_verification"]["query"]) as r:
        assert r.status == 200
        assert await r.read() == VECTORS["url_verification"]["expected_body"].encode()


async def test_url_verification_with_a_wrong_signature_is_refused(official):
    query = dict(VECTORS["url_verification"]["query"], msg_signature="0" * 40)
    async with official.http.get(official.url, params=query) as r:
        assert r.status == 403


async def test_official_callback_is_answered_with_an_encrypted_signed_reply(official):
    cb = VECTORS["callback"]
    async with official.http.post(official.url, params=cb["query"], data=cb["body"]) as r:
        assert r.status == 200
        envelope = await r.text()
    plain = official.wecom.crypto.open_reply(envelope)  # checks the reply's signature too
    assert "<ToUserName><![CDATA[mycreate]]></ToUserName>" in plain
    assert "绑定" in plain  # "mycreate" is not a known person: told how to bind


async def test_a_stale_or_future_timestamp_is_refused_before_anything_else(service):
    for skew in (-301, 301):
        plain = service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>")
        delivery = await service.wecom.post_plaintext(plain, timestamp=str(int(time.time()) + skew))
        assert delivery.status == 403


async def test_a_forged_signature_is_refused(service):
    query, body = service.wecom.crypto.sign_callback(
        service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>"))
    query["msg_signature"] = signature("wrong-token", query["timestamp"], query["nonce"], "x")
    async with service.http.post(service.url, params=query, data=body) as r:
        assert r.status == 403


async def _post_raw(service, body: bytes, query: dict | None = None, **kw):
    query = query or {"msg_signature": "a" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    async with service.http.post(service.url, params=query, data=body, **kw) as r:
        return r.status, await r.read()


async def test_garbage_and_oversized_bodies_get_4xx_never_500(service):
    assert (await _post_raw(service, b"not xml at all"))[0] == 400
    assert (await _post_raw(service, b"<xml><Encrypt>"))[0] == 400
    assert (await _post_raw(service, b"<xml>" + b"<a>" * 30000))[0] in (400, 413)
    assert (await _post_raw(service, b"x" * (65 * 1024)))[0] == 413

    async def chunks():  # no Content-Length: the limit still holds
        for _ in range(20):
            yield b"y" * 8192
    assert (await _post_raw(service, chunks()))[0] == 413


async def _post_signed_bytes(service, plaintext: bytes):
    crypto = service.wecom.crypto
    encrypt = crypto._prp.encrypt(plaintext, crypto.receive_id).decode()
    ts, nonce = str(int(time.time())), "42"
    query = {"msg_signature": signature(crypto.token, ts, nonce, encrypt), "timestamp": ts,
             "nonce": nonce}
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    return await _post_raw(service, body, query)


@pytest.mark.parametrize("plaintext", [
    b"\xff\xfe not utf-8 \xc3",
    "<xml><FromUserName>demo-liaison</FromUserName><MsgType>text</MsgType>"
    "<Content>&#xD800;</Content><MsgId>1</MsgId></xml>".encode(),
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><FromUserName>&a;</FromUserName></xml>',
    b"<xml><unclosed></xml>",
    b"<notxml/>",
], ids=["invalid-utf8", "lone-surrogate", "doctype", "broken", "no-sender"])
async def test_authenticated_but_unreadable_messages_get_an_empty_200(service, plaintext):
    status, body = await _post_signed_bytes(service, plaintext)
    assert (status, body) == (200, b"")


async def test_an_unknown_message_type_gets_a_polite_answer(service):
    plain = service.wecom.message_xml("demo-liaison", "hologram", "<Beam>1</Beam>")
    delivery = await service.wecom.post_plaintext(plain)
    assert delivery.status == 200 and "收到你的消息" in delivery.reply_text


async def test_events_without_msgid_are_deduplicated_by_sender_and_time(service, db):
    at = int(time.time())
    first = await service.wecom.event("demo-liaison", "enter_agent", create_time=at)
    retry = await service.wecom.event("demo-liaison", "enter_agent", create_time=at)
    other = await service.wecom.event("demo-principal", "enter_agent", create_time=at)
    assert "张联络" in first.reply_text
    assert retry.status == 200 and retry.reply_xml is None
    assert "李校长" in other.reply_text
    click = await service.wecom.event("demo-liaison", "click", "帮助", create_time=at)
    assert "你可以使用" in click.reply_text  # a menu click in the same second is its own event


async def test_fifty_concurrent_copies_of_one_message_are_handled_once(service, db):
    msg_id = service.wecom.new_msg_id()
    results = await asyncio.gather(*(service.wecom.text("demo-liaison", "帮助", msg_id=msg_id)
                                     for _ in range(50)))
    assert all(r.status == 200 for r in results)
    assert sum(r.reply_xml is not None for r in results) == 1
    count = db.call(lambda session: session.exec(
        select(func.count()).select_from(ProcessedCallback)).one())
    assert count == 1


async def test_empty_long_and_emoji_text_get_polite_chinese_answers(service):
    assert "没有收到内容" in (await service.wecom.text("demo-liaison", "   ")).reply_text
    assert "太长" in (await service.wecom.text("demo-liaison", "隐" * 10000)).reply_text
    assert "没有听懂" in (await service.wecom.text("demo-liaison", "😀🚒🔥")).reply_text


async def test_a_stranger_gets_one_polite_binding_hint_and_nothing_else(service):
    delivery = await service.wecom.text("stranger-1", "上报 三楼消防通道堵塞")
    assert "绑定" in delivery.reply_text and "邀请码" in delivery.reply_text


def test_card_event_selected_items_are_always_lists():
    xml = ("<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"
           "<Event>template_card_event</Event><EventKey>k</EventKey><TaskId>t</TaskId>"
           "<ResponseCode>rc</ResponseCode><SelectedItems><SelectedItem><QuestionKey>q</QuestionKey>"
           "<OptionIds><OptionId>o1</OptionId></OptionIds></SelectedItem></SelectedItems></xml>")
    msg = parse_callback(xml)
    assert msg.kind == "card"
    assert msg.card.selected == {"q": ("o1",)}
    assert (msg.card.task_id, msg.card.response_code) == ("t", "rc")
