"""Hostile input, part 1: every parser that reads what a stranger (or WeCom) sends either
answers or raises its own error: never anything else (issue 8, part 3).

Property tests (hypothesis) on the app's XML, the ``<Encrypt>`` cut, the crypto, the AI bot's
JSON bodies and frames, the command router, the date, month and period readers, and the small
argument parsers the handlers use. The same parsers are fuzzed for longer by
``bench/fuzz_callbacks.py``.
"""
from __future__ import annotations

import base64
import json
import string
from datetime import date, datetime, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.aibot import frames
from bot.aibot.inbound import BadBody, Inbound, parse_body
from bot.app_xml import BadXml, cdata, parse_callback
from bot.crypto import CallbackCrypto, CryptoError, extract_encrypt
from bot.dashboard.pages import _filters
from bot.dashboard.signing import LinkError, Signer
from bot.dates import DateParseError, parse_any_date, parse_date
from bot.render import split_pages
from bot.messages import Incoming
from bot.router import Routes, normalise
from bot.workcal import load_calendar
from handlers import ROUTERS
from handlers.hazard_plan import parse_labelled
from handlers.ledger_export import PeriodError, parse_period
from handlers.monthly_common import parse_correction
from handlers.selfcheck import parse_answer
from handlers.stats import parse_month as stats_month
from models.grading_facts import window_for
from models.hazard import split_number
from models.months import parse_month
from tests.conftest import AES_KEY, CORP_ID, TOKEN

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
CRYPTO = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
ROUTES = Routes(ROUTERS)
CALENDAR = load_calendar()

# characters XML 1.0 allows (a CDATA section cannot hold the others)
XML_CHARS = st.characters(blacklist_categories=("Cs",),
                          blacklist_characters="".join(chr(c) for c in range(32)
                                                       if c not in (9, 10, 13)) + "\ufffe\uffff")
# the words and marks the parsers look for, so random text reaches their inner branches
WORDS = st.sampled_from([
    "上报", "整改", "整改完成", "复查", "通过", "不通过", "延期", "批准延期", "隐患", "台账",
    "月报", "自查", "取消", "确认", "修改", "跳过", "是", "否", "一般", "重大", "@", "YH2026-",
    "000001", "责任部门:", "时限:", "明天", "3天后", "下周五", "12月1日", "2026-11-01", "至",
    "本月", "上月", "更正", "整改率", "%", "撤销", " ", "\u3000", "\u200b", "\u202e", "²", "፩",
    "٣", "①", "]]>", "<![CDATA[", "{{ 7*7 }}", "'; DROP TABLE hazard; --", "\n",
])
HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(WORDS, st.text(max_size=4)), max_size=8).map("".join),
)


# -- the app's XML ---------------------------------------------------------------------------

@FAST
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(
    lambda b: b.decode("utf-8", "replace"))))
@example("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>")
@example('<!DOCTYPE x [<!ENTITY a "b">]><xml/>')
@example("<xml><FromUserName><a/></FromUserName></xml>")
@example("<xml>" + "<a>" * 3000 + "</a>" * 3000 + "</xml>")
@example("<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>template_card_event"
         "</Event><SelectedItems>x</SelectedItems></xml>")
@example("<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>template_card_event"
         "</Event><SelectedItems><SelectedItem>x</SelectedItem><SelectedItem><OptionIds>y"
         "</OptionIds></SelectedItem></SelectedItems></xml>")
@example("<xml><FromUserName>u</FromUserName><CreateTime>99999999999999999999</CreateTime>"
         "<MsgType>location</MsgType><Location_X>nan</Location_X><Location_Y>1e999</Location_Y>"
         "</xml>")
def test_parse_callback_on_any_text_gives_an_incoming_or_bad_xml(text):
    try:
        msg = parse_callback(text)
    except BadXml:
        return
    assert isinstance(msg, Incoming) and msg.user_id and msg.channel == "app"


MSG_TYPES = st.sampled_from(["text", "image", "voice", "video", "location", "link", "file",
                             "event", "hologram", ""])
EVENTS = st.sampled_from(["enter_agent", "click", "view", "template_card_event", ""])


@FAST
@given(user=st.text(XML_CHARS, min_size=1, max_size=40), msg_type=MSG_TYPES, event=EVENTS,
       content=st.text(XML_CHARS, max_size=200), key=st.text(XML_CHARS, max_size=40),
       create_time=st.one_of(st.integers(), st.text(XML_CHARS, max_size=12)),
       msg_id=st.one_of(st.none(), st.text(XML_CHARS, max_size=30)),
       extra=st.text(XML_CHARS, max_size=30))
def test_well_formed_callbacks_with_any_field_values_parse(user, msg_type, event, content, key,
                                                           create_time, msg_id, extra):
    fields = {"ToUserName": CORP_ID, "FromUserName": user, "CreateTime": str(create_time),
              "MsgType": msg_type, "Content": content, "Event": event, "EventKey": key,
              "MediaId": extra, "Url": extra, "Location_X": extra, "Location_Y": extra,
              "Label": extra, "TaskId": extra, "ResponseCode": extra}
    if msg_id is not None:
        fields["MsgId"] = msg_id
    xml = "<xml>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>"
    try:
        msg = parse_callback(xml)
    except BadXml:
        # the only refusal of a well-formed envelope: a sender that is all whitespace
        assert not _xml_text(user).strip()
        return
    assert msg.user_id == _xml_text(user).strip()
    if msg_type == "text":
        assert msg.kind == "text" and msg.text == _xml_text(content).strip()
    if msg_type == "event":
        assert msg.kind in ("event", "card")


def _xml_text(value: str) -> str:
    """What an XML parser makes of character data: line ends become \\n."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


# -- the envelope and the crypto -------------------------------------------------------------

@FAST
@given(body=st.one_of(
    st.binary(max_size=400),
    st.tuples(st.binary(max_size=40), st.text(string.ascii_letters + string.digits + "+/=<>![]",
                                              max_size=200), st.binary(max_size=40))
    .map(lambda t: t[0] + b"<Encrypt><![CDATA[" + t[1].encode() + b"]]></Encrypt>" + t[2])))
@example(b"<Encrypt>" + b"A" * 70000 + b"</Encrypt>")
@example(b"<Encrypt><![CDATA[]]></Encrypt>")
def test_extract_encrypt_gives_base64_text_or_none(body):
    found = extract_encrypt(body)
    assert found is None or (found and set(found) <= set(string.ascii_letters + string.digits
                                                          + "+/="))


@FAST
@given(raw=st.binary(max_size=200), text=st.text(string.ascii_letters + string.digits + "+/=",
                                                 max_size=120))
@example(raw=b"", text="")
@example(raw=b"\x00" * 32, text="====")
def test_decrypt_of_anything_gives_text_or_crypto_error(raw, text):
    for candidate in (base64.b64encode(raw).decode(), text):
        try:
            assert isinstance(CRYPTO.decrypt(candidate), str)
        except CryptoError:
            pass


@FAST
@given(plain=st.text(max_size=200))
def test_what_we_encrypt_decrypts_to_the_same_text(plain):
    assert CRYPTO.decrypt(CRYPTO.encrypt(plain)) == plain


@FAST
@given(plain=st.text(max_size=100), flip=st.integers(min_value=0, max_value=10_000))
def test_a_tampered_ciphertext_never_raises_anything_but_crypto_error(plain, flip):
    raw = bytearray(base64.b64decode(CRYPTO.encrypt(plain)))
    raw[flip % len(raw)] ^= 1 + flip % 255
    try:
        CRYPTO.decrypt(base64.b64encode(bytes(raw)).decode())
    except CryptoError:
        pass


# -- the AI bot's JSON -----------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
FIELDS = ["msgid", "aibotid", "chattype", "chatid", "from", "msgtype", "text", "voice", "image",
          "mixed", "stream", "event", "quote", "create_time", "response_url", "userid",
          "content", "msg_item", "url", "aeskey", "id", "eventtype", "template_card_event",
          "event_key", "task_id", "selected_items", "selected_item", "question_key",
          "option_ids", "option_id"]
KEYED_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["text", "voice", "mixed", "image", "stream", "event", "group", "single",
                       "template_card_event", "enter_chat", "https://x/y", "@bot 上报"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=5), max_leaves=25)


@FAST
@given(body=st.one_of(st.dictionaries(st.sampled_from(FIELDS), KEYED_JSON, max_size=8),
                      st.dictionaries(st.text(max_size=8), JSON, max_size=5)))
@example({"from": {"userid": "u"}, "msgtype": "event", "create_time": True,
          "event": {"eventtype": "template_card_event", "template_card_event": {
              "selected_items": {"selected_item": {"option_ids": {"option_id": 5}}}}}})
@example({"from": {"userid": "u"}, "msgtype": "mixed", "chattype": "group",
          "mixed": {"msg_item": [None, {"msgtype": "image", "image": {"url": "https://a"}}]}})
@example({"from": {"userid": "u"}, "create_time": 10**30, "msgtype": "text"})
def test_an_ai_bot_body_gives_an_inbound_or_bad_body(body):
    try:
        inbound = parse_body(body, now=NOW)
    except BadBody:
        return
    assert isinstance(inbound, Inbound) and isinstance(inbound.msg, Incoming)
    assert inbound.msg.user_id and inbound.msg.channel == "aibot"


@FAST
@given(text=st.one_of(
    st.text(max_size=200), st.binary(max_size=200),
    JSON.map(json.dumps),
    st.fixed_dictionaries({"cmd": KEYED_JSON, "headers": st.one_of(
        KEYED_JSON, st.fixed_dictionaries({"req_id": KEYED_JSON})), "body": KEYED_JSON,
        "errcode": JSON, "errmsg": JSON}).map(json.dumps)))
@example("[" * 100_000)
@example('{"headers": {"req_id": "r"}, "body": ' + "[" * 50_000 + "]" * 50_000 + "}")
@example(b"\xff\xfe")
@example('{"headers": {"req_id": "r"}, "errcode": 1e400}')
def test_a_long_connection_frame_parses_or_raises_bad_frame(text):
    try:
        frame = frames.parse(text)
    except frames.BadFrame:
        return
    assert isinstance(frame, frames.Frame) and frame.req_id
    assert isinstance(frame.event_type, str)


# -- the router ------------------------------------------------------------------------------

@FAST
@given(text=HOSTILE_TEXT)
@example("清单\u3000消防")
@example("帮助" * 1000)
def test_routes_match_a_prefix_longest_first_or_nothing(text):
    matched = ROUTES.match(text)
    clean = normalise(text)
    if matched is None:
        assert not any(clean.startswith(c.word) for c in ROUTES.commands)
        return
    command, args = matched
    assert clean.startswith(command.word)
    assert args == clean[len(command.word):].strip()
    assert not any(clean.startswith(c.word) and len(c.word) > len(command.word)
                   for c in ROUTES.commands)
    assert ROUTES.match(clean) == matched  # normalising twice changes nothing


# -- dates, months, periods, and the handlers' small parsers ---------------------------------

TODAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


@FAST
@given(text=HOSTILE_TEXT, today=TODAYS)
@example("9999-12-31", date(2026, 1, 1))
@example("2月29日", date(2027, 3, 1))
@example("九十九个月后", date(2100, 12, 31))
@example("9999个工作日", date(2026, 1, 1))
def test_parse_date_gives_a_date_from_today_on_or_a_parse_error(text, today):
    try:
        result = parse_date(text, today=today, calendar=CALENDAR)
    except DateParseError as exc:
        assert exc.reason in ("unparseable", "invalid", "past")
    else:
        assert type(result) is date and result >= today


@FAST
@given(text=HOSTILE_TEXT, today=TODAYS)
@example("0000-01-01", date(2026, 1, 1))
@example("9999年12月31日", date(2026, 1, 1))
@example("2月30日", date(2026, 1, 1))
@example("٢٠٢٦-١١-٠١", date(2026, 1, 1))
def test_parse_any_date_gives_a_date_or_a_parse_error(text, today):
    try:
        result = parse_any_date(text, today=today)
    except DateParseError as exc:
        assert exc.reason in ("unparseable", "invalid")
    else:
        assert type(result) is date


@FAST
@given(text=HOSTILE_TEXT, today=TODAYS)
@example("2026-11-01 至 2026-10-01", TODAY)
@example("1 2 3", TODAY)
def test_periods_months_and_windows_read_or_refuse(text, today):
    try:
        start, end = parse_period(text, today=today)
        assert start <= end
    except PeriodError as exc:
        assert exc.reason in ("unparseable", "invalid", "reversed")
    try:
        month = parse_month(text, today=today)
        assert month is None or (len(month) == 7 and month[4] == "-")
    except ValueError:
        pass
    month = stats_month(text, today=today)
    assert month is None or (len(month) == 7 and 1 <= int(month[5:]) <= 12)
    window = window_for(text, today=today)
    assert window is None or window.start <= window.end


@FAST
@given(text=HOSTILE_TEXT)
@example("YH2026-000001 YH٢٠٢٦-٠٠٠٠٠١")
@example("整改率 999999999999999999999%")
@example("已整改 ፩")
@example("否" + "x" * 600)
def test_the_handlers_argument_parsers_answer_for_any_text(text):
    number, rest = split_number(text)
    assert number is None or number.startswith("YH")
    assert isinstance(rest, str)
    assert all(isinstance(v, str) and v for v in parse_labelled(text).values())
    answer = parse_answer(text)
    assert answer is None or isinstance(answer[1], str)
    correction = parse_correction(text)
    assert correction is None or isinstance(correction[0], str)


# -- the dashboard's link and query ----------------------------------------------------------

@FAST
@given(token=st.one_of(st.text(max_size=80), st.from_regex(
    r"\A\d{1,12}\.\d{1,12}\.\d{1,12}\.[A-Za-z0-9_-]{43}\Z")))
def test_a_dashboard_token_verifies_or_raises_link_error(token):
    try:
        Signer("s").verify(token, now=NOW)
    except LinkError as exc:
        assert exc.reason in ("invalid", "expired")


@FAST
@given(query=st.dictionaries(st.sampled_from(["unit", "page", "status", "level", "area", "t"]),
                             st.one_of(st.text(max_size=14), WORDS), max_size=6))
@example({"page": "²"})
@example({"unit": "፩"})
@example({"unit": "٣"})
def test_dashboard_filters_take_any_query(query):
    filters = _filters(query, {"fire": "消防"})
    assert filters.unit is None or isinstance(filters.unit, int)
    assert isinstance(filters.page, int) and filters.page >= 1


@FAST
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                blacklist_characters="\n"),
                        max_size=900), max_size=12),
       st.integers(min_value=0, max_value=400))
def test_pages_fit_their_budget_and_lose_no_character(lines, reserve):
    text = "\n".join(lines)
    pages = split_pages(text, reserve=reserve)
    if len(text.encode()) <= 2048:
        assert pages == [text]
        return
    assert all(0 < len(p.encode()) <= 2048 - reserve for p in pages)
    assert not any(p.startswith("\n") for p in pages)  # no page starts with an empty line
    assert "".join(pages).replace("\n", "") == text.replace("\n", "")
