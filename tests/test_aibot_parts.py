"""The AI bot's parts on their own: its JSON to ``Incoming``, the image crypto, the config."""
from __future__ import annotations

import base64
import os
from datetime import datetime, timezone

import pytest

from bot.aibot import media
from bot.aibot.inbound import BadBody, parse_body, strip_mention
from bot.config import ConfigError, load_config

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def body(**fields):
    return {"msgid": "m1", "aibotid": "b", "chattype": "group", "chatid": "wrG",
            "from": {"userid": "u1"}, **fields}


def test_a_group_text_loses_its_leading_mention_only():
    inbound = parse_body(body(msgtype="text", text={"content": "@隐患排查助手 上报 漏水 @二楼"}),
                         now=NOW)
    msg = inbound.msg
    assert (msg.channel, msg.kind, msg.text) == ("aibot", "text", "上报 漏水 @二楼")
    assert (msg.chat_id, msg.chat_type, msg.dedupe_key) == ("wrG", "group", "msg:m1")
    assert strip_mention("@机器人\u3000帮助") == "帮助"
    assert strip_mention("帮助 @机器人") == "帮助 @机器人"
    single = parse_body({**body(msgtype="text", text={"content": "@三楼"}), "chattype": "single"},
                        now=NOW).msg
    assert (single.text, single.chat_id, single.chat_type) == ("@三楼", "", "single")


def test_mixed_text_and_images_and_a_quote():
    inbound = parse_body(body(msgtype="mixed", mixed={"msg_item": [
        {"msgtype": "text", "text": {"content": "@bot 整改完成 YH2026-000001"}},
        {"msgtype": "image", "image": {"url": "https://x/1", "aeskey": "k"}},
        {"msgtype": "image", "image": {"url": "ftp://nope"}}, "junk"]},
        quote={"msgtype": "text", "text": {"content": "原来那条"}}), now=NOW)
    assert inbound.msg.kind == "text" and inbound.msg.text == "整改完成 YH2026-000001"
    assert [i.url for i in inbound.images] == ["https://x/1"]
    assert inbound.msg.quote_text == "原来那条"
    only_image = parse_body(body(msgtype="mixed", mixed={"msg_item": [
        {"msgtype": "text", "text": {"content": "@bot"}},
        {"msgtype": "image", "image": {"url": "https://x/2"}}]}), now=NOW)
    assert only_image.msg.kind == "image" and only_image.msg.text == ""


def test_voice_is_text_and_other_kinds_are_named():
    assert parse_body(body(msgtype="voice", voice={"content": "帮助"}), now=NOW).msg.text == "帮助"
    assert parse_body(body(msgtype="file", file={"url": "https://f"}), now=NOW).msg.kind == "file"
    assert parse_body(body(msgtype="hologram"), now=NOW).msg.kind == "unknown"


def test_card_clicks_nested_or_flat_and_events():
    event = {"eventtype": "template_card_event", "event_key": "flat", "task_id": "flat",
             "template_card_event": {"card_type": "vote_interaction", "event_key": "hz:pass:1",
                                     "task_id": "t9", "selected_items": {"selected_item": [
                                         {"question_key": "q", "option_ids": {
                                             "option_id": ["a", "b"]}}]}}}
    click = parse_body(body(msgtype="event", create_time=1700000000, event=event), now=NOW)
    assert click.msg.kind == "card" and click.msg.card.event_key == "hz:pass:1"
    assert click.msg.card.task_id == "t9" and click.msg.card.selected == {"q": ("a", "b")}
    assert click.msg.created_at == datetime.fromtimestamp(1700000000, timezone.utc)
    again = parse_body(body(msgtype="event", create_time=1700000000, event=event, msgid="m2"),
                       now=NOW)
    assert again.msg.dedupe_key == click.msg.dedupe_key  # sender + time + event type
    enter = parse_body(body(msgtype="event", event={"eventtype": "enter_chat"}), now=NOW)
    assert (enter.msg.kind, enter.msg.event) == ("event", "enter_agent")


@pytest.mark.parametrize("bad", [{}, {"from": "u"}, {"from": {"userid": ""}}, {"from": []}])
def test_a_body_without_a_sender_is_refused(bad):
    with pytest.raises(BadBody):
        parse_body(bad, now=NOW)


def test_image_crypto_round_trip_and_refusals():
    key = os.urandom(32)
    for size in (0, 1, 31, 32, 33, 1000):
        data = os.urandom(size)
        sealed = media.encrypt(data, key)
        assert len(sealed) % 32 == 0 and media.decrypt(sealed, key) == data
    with pytest.raises(media.MediaError):
        media.decrypt(media.encrypt(b"x" * 40, key), os.urandom(32))
    with pytest.raises(media.MediaError):
        media.decrypt(b"short", key)
    with pytest.raises(media.MediaError):
        media.decode_key("not base64 !!")
    encoding_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    assert media.decode_key(encoding_key) == base64.b64decode(encoding_key + "=")
    assert media.sniff(b"\x89PNG\r\n\x1a\n...") == "image/png"


def _load(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={}, require_app=False)


def test_the_ai_bot_is_off_unless_configured_and_names_a_missing_key(tmp_path):
    assert not _load(tmp_path, "").wecom.aibot.enabled
    on = _load(tmp_path, '[wecom.aibot]\nbot_id = "b"\nsecret = "s"\n').wecom.aibot
    assert on.enabled and on.mode == "long_connection"
    assert on.ws_url == "wss://openws.work.weixin.qq.com"
    with pytest.raises(ConfigError, match="wecom.aibot.secret"):
        _load(tmp_path, '[wecom.aibot]\nbot_id = "b"\n')
    with pytest.raises(ConfigError, match="wecom.aibot.bot_id"):
        _load(tmp_path, '[wecom.aibot]\nsecret = "s"\n')
    with pytest.raises(ConfigError, match="wecom.aibot.encoding_aes_key"):
        _load(tmp_path, '[wecom.aibot]\nmode = "callback"\ntoken = "t"\n')
    with pytest.raises(ConfigError, match="wecom.aibot.mode"):
        _load(tmp_path, '[wecom.aibot]\nmode = "pigeon"\n')
    with pytest.raises(ConfigError, match="wecom.aibot.ws_url"):
        _load(tmp_path, '[wecom.aibot]\nws_url = "http://x"\n')
    callback = _load(tmp_path, '[wecom.aibot]\nmode = "callback"\ntoken = "t"\n'
                               'encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"\n')
    assert callback.wecom.aibot.enabled
    env = load_config(None, env={"SAFEBOT_WECOM_AIBOT_BOT_ID": "b",
                                 "SAFEBOT_WECOM_AIBOT_SECRET": "s"}, require_app=False)
    assert env.wecom.aibot.enabled
