"""Hostile input, part 2: through the real doors, with real signatures and crypto (issue 8,
part 3). Arbitrary text from anyone, and inside each conversation, never gets a non-200, the
error reply or an ERROR log; XML bombs, oversized bodies, replays and forged signatures are
refused, cheaply; SQL-ish, template-ish, CDATA-closing, zero-width and right-to-left text is
stored and shown exactly as it was sent.

The service's clock here is a ``FakeClock`` (frozen at the test's start) so a test can move it
past the replay window.
"""
from __future__ import annotations

import json
import logging
import re
import time

import pytest
import xmltodict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from bot.app_xml import BadXml, parse_callback
from bot.clock import FakeClock
from bot.crypto import signature
from bot.render import Renderer
from bot.router import Routes
from handlers import ROUTERS
from models.dedupe import ProcessedCallback
from models.hazard import Hazard
from tests.test_hazard_loop import PLAN, report, say
from tests.test_hostile_parsers import XML_CHARS

ERROR_REPLY = Renderer().render("common/error.txt.j2")
DOOR = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])
COMMAND_WORDS = sorted({c.word for c in Routes(ROUTERS).commands})
ANSWERS = ["确认", "是", "否", "不适用", "跳过", "修改", "不上报", "一般", "重大", "消防", "取消",
           "下一页", "帮助", "保留", "删除", "全部保留", "预览", "提交", "更正 整改率 80%",
           "更正 已整改 ፩", "信息 ", "案例 ", "删除 信息1", "进展 ", "完成", "撤回", "@", "明天",
           "3天后", "9999-12-31", "2月30日", "责任部门:", "责任人:孙值班", "措施:", "资金:",
           "时限:", "预案:", "YH2026-000001", "²", "፩", "٣", "\u200b", "\u202e", "]]>",
           "{{ 7*7 }}", "'; DROP TABLE hazard; --", "\n", "\u3000"]
# "<!DOCTYPE" and "<!ENTITY" are left out on purpose: app_xml refuses any plaintext holding
# them, even inside a CDATA text (see the report: a user who types them gets no answer)
WORD = st.sampled_from(COMMAND_WORDS + ANSWERS)
PIECE = st.text(XML_CHARS, max_size=8)
TEXT = st.one_of(st.text(XML_CHARS, max_size=80),
                 st.lists(st.one_of(WORD, PIECE), min_size=1, max_size=6).map(" ".join),
                 st.lists(st.one_of(WORD, PIECE), min_size=1, max_size=6).map("".join))
USERS = ["demo-liaison", "demo-principal", "cdsy-deputy", "demo-duty", "cd-leader",
         "cd-liaison", "demo-bureau", "demo-admin", "cxzx-liaison", "stranger-9"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def errors_since(caplog: pytest.LogCaptureFixture, start: int) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records[start:]
            if r.levelno >= logging.ERROR]


async def answered(svc, caplog, user: str, text: str) -> str:
    """Send ``text``; assert a 200, not the error reply, and no ERROR logged meanwhile."""
    start = len(caplog.records)
    delivery = await svc.wecom.text(user, text)
    assert delivery.status == 200, (user, text)
    reply = delivery.reply_text or ""
    assert ERROR_REPLY not in reply, (user, text)
    assert not errors_since(caplog, start), (user, text, errors_since(caplog, start))
    return reply


# -- arbitrary text ----------------------------------------------------------------------------

@settings(DOOR, max_examples=200)
@given(user=st.sampled_from(USERS), text=TEXT)
async def test_any_text_from_anyone_is_answered_without_an_error(service, caplog, user, text):
    await answered(service, caplog, user, "取消")  # each example starts outside a conversation
    await answered(service, caplog, user, text)


@pytest.fixture
async def number(service) -> str:
    number, _ = await report(service)
    return number


@pytest.mark.parametrize("opening", ["上报", "整改 {number}", "自查 消防", "月报",
                                     "检查 消防通道"])
@settings(DOOR, max_examples=40)
@given(texts=st.lists(st.one_of(WORD, TEXT), min_size=1, max_size=4))
async def test_any_answers_inside_a_conversation_are_answered_without_an_error(
        service, caplog, number, opening, texts):
    user = "demo-principal" if opening.startswith("检查") else "demo-liaison"
    await answered(service, caplog, user, "取消")
    await answered(service, caplog, user, opening.format(number=number))
    for text in texts:
        await answered(service, caplog, user, text)


# -- the envelope: bombs, sizes, replays, signatures -------------------------------------------

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">' for i in range(1, 10))
          + ']><xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName>demo-liaison'
          '</FromUserName><MsgType>text</MsgType><Content>&lol9;</Content><MsgId>7</MsgId></xml>')
BOMBS = {
    "billion-laughs": LAUGHS,
    "quadratic": ('<!DOCTYPE x [<!ENTITY a "' + "a" * 20000 + '">]><xml><FromUserName>u'
                  '</FromUserName><MsgType>text</MsgType><Content>' + "&a;" * 2000
                  + "</Content></xml>"),
    "external-entity": ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>'
                        "<FromUserName>demo-liaison</FromUserName><MsgType>text</MsgType>"
                        "<Content>&e;</Content><MsgId>8</MsgId></xml>"),
    "lowercase-doctype": ('<!doctype x [<!ENTITY a "b">]><xml><FromUserName>u</FromUserName>'
                          "<Content>&a;</Content></xml>"),
    "parameter-entity": ('<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>'
                         "<xml><FromUserName>u</FromUserName></xml>"),
    "deep": "<xml><FromUserName>u</FromUserName>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>",
}


@pytest.mark.parametrize("name", BOMBS)
def test_an_xml_bomb_is_refused_by_the_parser_in_milliseconds(name):
    started = time.perf_counter()
    try:
        msg = parse_callback(BOMBS[name])
    except BadXml:
        msg = None
    assert time.perf_counter() - started < 0.05
    assert msg is None


async def test_every_bomb_inside_a_signed_message_gets_an_empty_200(service, db):
    for name, bomb in BOMBS.items():
        delivery = await service.wecom.post_plaintext(bomb)
        assert (delivery.status, delivery.reply_xml) == (200, None), name
    assert _count(db, ProcessedCallback) == 0


async def test_a_billion_laughs_inside_a_signed_message_is_refused_fast(service, db, caplog):
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        delivery = await service.wecom.post_plaintext(LAUGHS)
        timings.append(time.perf_counter() - started)
        assert (delivery.status, delivery.reply_xml) == (200, None)  # 200: WeCom must not retry
    assert min(timings) < 0.05, timings  # the whole HTTP round trip, crypto included
    assert _count(db, ProcessedCallback) == 0  # nothing got as far as the dedupe record
    assert any("DOCTYPE" in r.getMessage() for r in caplog.records)


async def test_a_bomb_in_the_unsigned_envelope_is_never_parsed(service):
    query = {"msg_signature": "a" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    started = time.perf_counter()
    async with service.http.post(service.url, params=query, data=LAUGHS.encode()) as resp:
        assert resp.status == 400  # no <Encrypt>: the body is never parsed as XML
    assert time.perf_counter() - started < 0.05


async def test_an_oversized_body_is_refused_before_its_signature_is_checked(service):
    crypto = service.wecom.crypto
    plain = service.wecom.message_xml("demo-liaison", "text", "<Content>" + "x" * 70000
                                      + "</Content>")
    query, body = crypto.sign_callback(plain)  # correctly signed, but too big
    async with service.http.post(service.url, params=query, data=body.encode()) as resp:
        assert resp.status == 413


async def test_a_replay_is_answered_once_inside_the_window_and_refused_after_it(service, clock,
                                                                                db):
    crypto = service.wecom.crypto
    ts = str(int(clock.now().timestamp()))
    query, body = crypto.sign_callback(
        service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>"),
        timestamp=ts)

    async def post() -> tuple[int, str]:
        async with service.http.post(service.url, params=query, data=body.encode()) as resp:
            return resp.status, await resp.text()
    status, first = await post()
    assert status == 200 and "你可以使用" in crypto.open_reply(first)
    assert await post() == (200, "")  # WeCom's retry: acknowledged, not handled again
    clock.advance(seconds=299)
    assert await post() == (200, "")
    clock.advance(seconds=2)
    assert (await post())[0] == 403  # the same signed request, 301 s later
    assert _count(db, ProcessedCallback) == 1
    fresh = await service.wecom.post_plaintext(
        service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>"),
        timestamp=str(int(clock.now().timestamp())))
    assert fresh.status == 200 and "你可以使用" in fresh.reply_text  # the door still works


async def test_a_timestamp_far_ahead_is_refused_too(service, clock):
    delivery = await service.wecom.post_plaintext(
        service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>"),
        timestamp=str(int(clock.now().timestamp()) + 301))
    assert delivery.status == 403


def _forgeries(crypto, query: dict, body: str) -> dict[str, tuple[dict, str]]:
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    other_query, other_body = crypto.sign_callback("<xml><FromUserName>x</FromUserName></xml>")
    ts, nonce = query["timestamp"], query["nonce"]
    return {
        "wrong-token": ({**query, "msg_signature": signature("other", ts, nonce, encrypt)}, body),
        "another-message's": ({**query, "msg_signature": other_query["msg_signature"]}, body),
        "body-swapped": (query, other_body),
        "uppercase": ({**query, "msg_signature": query["msg_signature"].upper()}, body),
        "truncated": ({**query, "msg_signature": query["msg_signature"][:-1]}, body),
        "zeros": ({**query, "msg_signature": "0" * 40}, body),
        "unicode": ({**query, "msg_signature": "签名" * 20}, body),
        "empty": ({**query, "msg_signature": ""}, body),
        "missing": ({k: v for k, v in query.items() if k != "msg_signature"}, body),
        "nonce-changed": ({**query, "nonce": nonce + "1"}, body),
        "timestamp-changed": ({**query, "timestamp": str(int(ts) + 1)}, body),
        "timestamp-superscript": ({**query, "timestamp": "²"}, body),
        "timestamp-ethiopic": ({**query, "timestamp": "፩" * 10}, body),
        "timestamp-fullwidth": ({**query, "timestamp": "".join(chr(0xFF10 + int(c))
                                                                for c in ts)}, body),
        "timestamp-negative": ({**query, "timestamp": "-" + ts}, body),
        "timestamp-13-digits": ({**query, "timestamp": ts + "000"}, body),
    }


async def test_forged_or_altered_signatures_are_refused(service, db):
    crypto = service.wecom.crypto
    query, body = crypto.sign_callback(
        service.wecom.message_xml("demo-liaison", "text", "<Content>帮助</Content>"))
    for name, (q, b) in _forgeries(crypto, query, body).items():
        async with service.http.post(service.url, params=q, data=b.encode()) as resp:
            assert resp.status == 403, name
        async with service.http.get(service.url, params={**q, "echostr": "abc"}) as resp:
            assert resp.status == 403, name  # URL verification: the same checks
    assert _count(db, ProcessedCallback) == 0
    async with service.http.post(service.url, params=query, data=body.encode()) as resp:
        assert resp.status == 200  # the untouched request still passes


# -- what users type, stored and shown verbatim ------------------------------------------------

VERBATIM = [
    "'; DROP TABLE hazard; --",
    '" OR 1=1 --',
    "{{ 7*7 }}",
    "{% raw %}",
    "${7*7}",
    "#{7*7} <%= 7*7 %> {{config}}",
    "Robert'); DELETE FROM person;--",
    "%s %d %(x)s {0} {x!r}",
    "\\'; SELECT pg_sleep(10); --",
    "消防\u200b通道\u200d堵塞\u202e右到左\u202c\u200f",
]


async def _report_via_conversation(svc, description: str, location: str, level: str = "一般"):
    user = "demo-liaison"
    await say(svc, user, "取消")
    assert "描述" in await say(svc, user, "上报")
    confirm = None
    for answer in (description, location, "消防", level, "跳过"):
        confirm = await say(svc, user, answer)
    assert description in confirm and location in confirm  # the confirmation shows them as sent
    reply = await say(svc, user, "确认")
    return re.search(r"YH\d{4}-\d{6}", reply).group(0)


async def test_sql_and_template_text_is_stored_and_shown_verbatim(service, db):
    for i, text in enumerate(VERBATIM):
        description, location = f"{text} 描述", f"{text} 位置"
        number = await _report_via_conversation(service, description, location)
        stored = db.call(lambda session: session.exec(
            select(Hazard.description, Hazard.location).where(Hazard.number == number)).one())
        assert tuple(stored) == (description, location), text
        assert _count(db, Hazard) == i + 1  # no table dropped, nothing else written
        details = await say(service, "demo-principal", f"隐患 {number}")
        assert description in details and location in details, text
        if "7*7" in text:
            shown = next(line for line in details.splitlines() if description in line)
            assert "49" not in shown  # never evaluated
        ledger = await say(service, "demo-liaison", "台账")
        assert description in ledger, text


async def test_a_major_hazard_with_hostile_text_still_alerts_with_it_verbatim(service,
                                                                              fake_wecom):
    description = '重大 "}, {"x": "{{ 7*7 }}\\u0000'
    await _report_via_conversation(service, description, "</xml>]]>", level="重大")
    card = (await fake_wecom.wait_for_pushes(1))[0]
    assert card.msgtype == "template_card" and card.body["sub_title_text"] == description
    assert card.body["horizontal_content_list"][0]["value"] == "</xml>]]>"


async def test_a_cdata_end_in_a_description_is_echoed_in_a_well_formed_reply(service):
    description = "通道]]><Content>伪造</Content><![CDATA[堵塞"
    user = "demo-liaison"
    await say(service, user, "上报")
    delivery = await service.wecom.text(user, description)
    assert delivery.status == 200
    parsed = xmltodict.parse(delivery.reply_xml)["xml"]  # the reply envelope is still one message
    assert description in parsed["Content"] and parsed["MsgType"] == "text"
    assert description in delivery.reply_text


async def test_ten_thousand_characters_get_the_too_long_answer_and_store_nothing(service, db):
    for user in ("demo-liaison", "stranger-9"):
        await say(service, user, "上报")
        reply = await say(service, user, "隐" * 10_000)
        assert "太长" in reply or "绑定" in reply
    assert _count(db, Hazard) == 0
    assert "描述" in await say(service, "demo-liaison", "隐" * 501)  # over 500: asked again
    number = await _report_via_conversation(service, "隐" * 500, "楼" * 100)
    assert db.call(lambda session: session.exec(
        select(func.length(Hazard.description)).where(Hazard.number == number)).one()) == 500


async def test_a_plan_with_hostile_fields_is_kept_verbatim(service, db):
    number, _ = await report(service)
    hostile = "'; DROP TABLE hazard; -- {{ 7*7 }}"
    plan = PLAN.replace("清理杂物并张贴禁止堆放标识", hostile)
    assert "整改方案已记录" in await say(service, "demo-liaison", f"整改 {number} {plan}")
    measures = db.call(lambda session: session.exec(
        select(Hazard.measures).where(Hazard.number == number)).one())
    assert measures == hostile
    assert hostile in await say(service, "demo-liaison", f"隐患 {number}")


def _count(db, table) -> int:
    return db.call(lambda session: session.exec(select(func.count()).select_from(table)).one())


# -- the AI bot's callback door ----------------------------------------------------------------

@pytest.fixture
async def box(tmp_path, database_url):
    from tests.aibot_sandbox import aibot_sandbox
    async with aibot_sandbox(tmp_path / "sandbox", database_url=database_url,
                             mode="callback") as sandbox:
        yield sandbox


async def test_the_ai_bot_door_refuses_odd_timestamps_and_reads_hostile_json_safely(box):
    from bot.aibot.setup import AIBOT_CALLBACK_PATH
    sender = box.callbacks
    for ts in ("²", "፩" * 10, "-1", "1e9"):
        query, envelope = sender.signed('{"from": {"userid": "demo-liaison"}}', timestamp=ts)
        async with box.http.post(AIBOT_CALLBACK_PATH, params=query, json=envelope) as resp:
            assert resp.status == 403, ts
        async with box.http.get(AIBOT_CALLBACK_PATH, params={**query, "echostr": "x"}) as resp:
            assert resp.status == 403, ts
    for plain in ("[" * 40_000, '{"a": ' * 5_000, '"\\ud800"',
                  json.dumps({"from": {"userid": "demo-liaison"}, "msgtype": "text",
                              "text": {"content": "{{ 7*7 }}"}, "create_time": 10**20})):
        query, envelope = sender.signed(plain)
        async with box.http.post(AIBOT_CALLBACK_PATH, params=query, json=envelope) as resp:
            assert resp.status == 200, plain[:20]


# -- digits that are not ASCII -------------------------------------------------------------------

async def test_digits_that_int_cannot_read_are_answered_without_an_error(service, caplog):
    for user, text in [
            ("demo-bureau", "查岗 随机 ፩"), ("demo-bureau", "查岗 随机 ²"), ("demo-bureau", "查岗 ፩"),
            ("demo-liaison", "提交 ፩"), ("demo-liaison", "稍后 YH2026-000001 ፩天"),
            ("demo-liaison", "延期 YH2026-000001 ፩天后 理由"), ("demo-liaison", "月报 ፩"),
            ("demo-principal", "导出台账 ፩"), ("demo-principal", "统计 ٣月"),
            ("demo-principal", "值班表 ፩"), ("demo-liaison", "请假 ፩ ²"),
            ("demo-bureau", "分级 ፩"), ("demo-principal", "检查情况 ፩"),
            ("demo-liaison", "整改 YH٢٠٢٦-፩")]:
        await answered(service, caplog, user, text)


def test_a_campaign_deliverable_number_in_other_digits_is_read_as_a_name(demo):
    from datetime import date
    from models import campaign_view
    from models.org import Unit
    from tests.test_campaigns import SEED_003, example, load
    load(demo, example(SEED_003))
    unit = demo.call(lambda session: session.exec(
        select(Unit.id).where(Unit.code == "CD-SY")).one())
    for args in ("፩ 说明", "² 说明", "٣"):
        picked = demo.call(campaign_view.pick, unit_id=unit, today=date(2025, 4, 10), args=args)
        assert "open" in picked or "item" in picked or "choices" in picked
