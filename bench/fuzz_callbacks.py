"""Fuzz the callback parsers, the command and date parsers, and both doors, in-process.

    python -m bench.fuzz_callbacks [--seconds 60] [--engine auto|atheris|random] [--seed N]
                                   [--targets parse_callback,door_text,...] [--no-door]

Each execution picks a target and feeds it bytes. Every target has a contract (issue 8,
part 3): a parser answers or raises its own error; a door never answers 500 (4xx before the
signature, 200 after it); a message from a bound person never gets the error reply and never
makes a handler log an ERROR. Anything else is a crash: it is printed once per kind (type and
place) with the input that caused it, and the run goes on. At the end: executions per target,
executions per second, distinct crashes; exit status 1 if there was any.

Engines: ``atheris`` (coverage-guided libFuzzer, ``pip install atheris``) when it is
installed, else ``random``: seeded mutation of a small corpus of valid inputs (byte flips,
splices, truncations, repeats and a dictionary of hostile tokens) — bounded and reproducible
with ``--seed``.

The doors are the real service (``bot.app.create_app``) on a random 127.0.0.1 port with a
temporary SQLite database holding the demo district and a fake WeCom beside it; the AI bot runs
in callback mode. Nothing leaves 127.0.0.1 and the temporary directory is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

try:
    import atheris
except ImportError:  # the random engine needs nothing
    atheris = None

# atheris measures coverage only in modules instrumented as they are first imported: here,
# before anything below imports them (and only when atheris is the engine)
INSTRUMENTED = ["bot", "handlers", "models", "xmltodict"]
if atheris is not None and not {"random", "--engine=random"} & set(sys.argv):
    with atheris.instrument_imports(include=INSTRUMENTED):
        import xmltodict  # noqa: F401
        from bot import app_xml, crypto, dates, router  # noqa: F401
        from bot.aibot import frames, inbound  # noqa: F401
        from handlers import ROUTERS  # noqa: F401
import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.test_utils import TestServer

from bot.aibot import frames
from bot.aibot.inbound import BadBody, parse_body
from bot.aibot.setup import AIBOT_CALLBACK_PATH
from bot.app import APP_CALLBACK_PATH, create_app
from bot.app_xml import BadXml, cdata, parse_callback
from bot.clock import Clock
from bot.config import (AibotConfig, AppConfig, Config, DatabaseConfig, StorageConfig,
                        WecomConfig)
from bot.crypto import CallbackCrypto, CryptoError, extract_encrypt, signature
from bot.dates import DateParseError, parse_any_date, parse_date
from bot.db import Database
from bot.render import Renderer
from bot.router import Routes
from bot.sandbox.demo import seed_demo
from bot.sandbox.fake_api import FakeWeCom
from bot.sandbox.sender import AppCallbackSender
from bot.workcal import load_calendar
from handlers import ROUTERS
from handlers.ledger_export import PeriodError, parse_period
from models.migrate import upgrade
from models.months import parse_month

CORP_ID, AGENT_ID = "wwfuzzcorp0000001", 1000002
TOKEN, SECRET = "fuzztoken", "fuzzsecret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AIBOT_TOKEN, AIBOT_AES_KEY = "fuzzaibot", "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"
USERS = ("demo-liaison", "demo-principal", "demo-duty", "cd-leader", "demo-bureau",
         "demo-admin", "cxzx-liaison", "stranger-fuzz")
TODAY = date(2026, 11, 20)
ROUTES = Routes(ROUTERS)
CALENDAR = load_calendar()
APP_CRYPTO = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
ERROR_REPLY = Renderer().render("common/error.txt.j2")

# tokens the random engine splices in (and atheris gets as a dictionary)
TOKENS = [b"\x1f", b"<!DOCTYPE", b"<!ENTITY", b"]]>", b"<![CDATA[", b"&#xD800;", b"&lol;", b"<xml>",
          b"</xml>", b"<MsgType>", b"event", b"template_card_event", b"<SelectedItems>",
          b"\xc2\xb2", b"\xe1\x8d\xa9", b"\xd9\xa3", b"{{ 7*7 }}", b"{% raw %}", b"'; --",
          b"\xe2\x80\xae", b"\xe2\x80\x8b", b"\xe3\x80\x80", b"[" * 64, b"{\"a\":" * 32,
          "上报".encode(), "整改".encode(), "复查".encode(), "月报".encode(), "自查 消防".encode(),
          "取消".encode(), "确认".encode(), "YH2026-000001".encode(), "明天".encode(),
          "2026-02-30".encode(), "下周五".encode(), "@".encode(), b"\x00", b"\xff\xfe"]

# digits that str.isdigit() accepts: ² and ፩ int() refuses, ٣ and ３ it reads
OTHER_DIGITS = ["²".encode(), "፩".encode(), "٣".encode(), "３".encode(), "①".encode()]


@dataclass
class Stats:
    runs: Counter = field(default_factory=Counter)
    crashes: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (target, input)
    started: float = field(default_factory=time.monotonic)


STATS = Stats()
atexit_dirs: list[Path] = []  # atheris's corpus, removed with the rest


class Unexpected(Exception):
    """A contract broken without an exception (a 500, the error reply, an ERROR log)."""


def crash(target: str, data: bytes, exc: BaseException) -> None:
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                  if "/bench/" not in f.filename), "?")
    kind = f"{target}: {type(exc).__name__} at {where}: {str(exc)[:120]}"
    if kind not in STATS.crashes:
        STATS.crashes[kind] = (target, repr(data[:300]))
        print(f"\n*** CRASH {kind}\n    input: {data[:300]!r}", flush=True)


# -- parser targets: (bytes) -> None, raising only on a broken contract -------------------------

def text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def t_parse_callback(data: bytes) -> None:
    try:
        parse_callback(text_of(data))
    except BadXml:
        pass


def t_parse_callback_fields(data: bytes) -> None:
    """A well-formed envelope whose field values come from the input."""
    parts = (text_of(data).split("\x1f") + [""] * 8)[:8]
    names = ("FromUserName", "MsgType", "Content", "Event", "EventKey", "CreateTime", "MsgId",
             "TaskId")
    xml = "<xml>" + "".join(f"<{n}>{cdata(v)}</{n}>" for n, v in zip(names, parts)) + "</xml>"
    try:
        parse_callback(xml)
    except BadXml:
        pass


def t_extract_encrypt(data: bytes) -> None:
    found = extract_encrypt(data)
    if found is not None and not found.isascii():
        raise Unexpected(f"non-ASCII encrypt {found[:40]!r}")


def t_decrypt(data: bytes) -> None:
    for candidate in (base64.b64encode(data).decode(), text_of(data)):
        try:
            APP_CRYPTO.decrypt(candidate)
        except CryptoError:
            pass


def t_frame(data: bytes) -> None:
    try:
        frames.parse(data)
    except frames.BadFrame:
        pass


def t_aibot_body(data: bytes) -> None:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        body = {"from": {"userid": "u"}, "msgtype": "text", "text": {"content": text_of(data)}}
    if not isinstance(body, dict):
        body = {"from": {"userid": "u"}, "msgtype": "mixed", "mixed": {"msg_item": body}}
    try:
        parse_body(body, now=datetime.now(timezone.utc))
    except BadBody:
        pass


def t_route(data: bytes) -> None:
    text = text_of(data)
    matched = ROUTES.match(text)
    if matched is not None and not isinstance(matched[1], str):
        raise Unexpected("args not a string")


def t_dates(data: bytes) -> None:
    text = text_of(data)
    for parse in (lambda: parse_date(text, today=TODAY, calendar=CALENDAR),
                  lambda: parse_any_date(text, today=TODAY)):
        try:
            parse()
        except DateParseError:
            pass
    try:
        parse_period(text, today=TODAY)
    except PeriodError:
        pass
    try:
        parse_month(text, today=TODAY)
    except ValueError:
        pass


PARSERS: dict[str, Callable[[bytes], None]] = {
    "parse_callback": t_parse_callback, "parse_callback_fields": t_parse_callback_fields,
    "extract_encrypt": t_extract_encrypt, "decrypt": t_decrypt, "aibot_frame": t_frame,
    "aibot_body": t_aibot_body, "route": t_route, "dates": t_dates,
}


# -- the doors: one real service, in this process ---------------------------------------------

class ErrorLog(logging.Handler):
    """Counts what the service logs at ERROR (an exception out of a handler is logged so)."""

    EXPECTED = ("could not be read",)  # an unreadable authenticated body: refused by design

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and exc.code < 500:
            return  # aiohttp's own 400 for a request line or header it cannot read
        if not any(e in message for e in self.EXPECTED):
            where = ""
            if record.exc_info and record.exc_info[2] is not None:
                last = traceback.extract_tb(record.exc_info[2])[-1]
                where = (f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]} at "
                         f"{Path(last.filename).name}:{last.lineno})")
            self.seen.append(f"{record.name}: {message[:160]}{where}")


class Doors:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.errors = ErrorLog()
        logging.getLogger().addHandler(self.errors)
        logging.getLogger().setLevel(logging.WARNING)
        self.loop.run_until_complete(self._start())
        self.ids = itertools.count(1)
        self.history: list[tuple[str, str]] = []

    async def _start(self) -> None:
        db_url = f"sqlite:///{self.workdir / 'fuzz.db'}"
        db = Database(db_url)
        upgrade(db.engine)
        db.call(seed_demo)
        db.close()
        clock = Clock()
        self.fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=clock, rate_limits=False)
        fake_app = web.Application()
        fake_app.router.add_routes(self.fake.routes())
        self.fake_server = TestServer(fake_app, host="127.0.0.1")
        await self.fake_server.start_server(access_log=None)
        self.fake.url = str(self.fake_server.make_url("")).rstrip("/")
        cfg = Config(database=DatabaseConfig(url=db_url),
                     wecom=WecomConfig(api_base_url=self.fake.url,
                                       app=AppConfig(corp_id=CORP_ID, agent_id=AGENT_ID,
                                                     secret=SECRET, token=TOKEN,
                                                     encoding_aes_key=AES_KEY),
                                       aibot=AibotConfig(mode="callback", token=AIBOT_TOKEN,
                                                         encoding_aes_key=AIBOT_AES_KEY)),
                     storage=StorageConfig(data_dir=str(self.workdir / "data")))
        self.server = TestServer(create_app(cfg, clock=clock, sweeps=()), host="127.0.0.1")
        await self.server.start_server(access_log=None)
        self.http = aiohttp.ClientSession()
        self.app_url = str(self.server.make_url(APP_CALLBACK_PATH))
        self.aibot_url = str(self.server.make_url(AIBOT_CALLBACK_PATH))
        self.sender = AppCallbackSender(http=self.http, url=self.app_url, crypto=APP_CRYPTO,
                                        agent_id=AGENT_ID)
        self.aibot_crypto = CallbackCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")

    def run(self, coro) -> Any:
        return self.loop.run_until_complete(coro)

    def check(self, target: str, status: int, allowed: tuple[int, ...], reply: str = "") -> None:
        if status not in allowed:
            raise Unexpected(f"HTTP {status}")
        if ERROR_REPLY in reply:
            raise Unexpected("the error reply")
        if self.errors.seen:
            seen, self.errors.seen = self.errors.seen, []
            raise Unexpected("ERROR logged: " + seen[0])

    # targets
    def raw(self, data: bytes) -> None:
        """Unsigned: any query, any body (``door\x1fsignature\x1ftimestamp\x1fnonce\x1fbody``).
        4xx, never 500."""
        door, sig, ts, nonce, body = (data.split(b"\x1f", 4) + [b""] * 5)[:5]
        query = {"msg_signature": text_of(sig), "timestamp": text_of(ts), "nonce": text_of(nonce)}
        url = self.aibot_url if door[:2] == b"ai" else self.app_url
        status = self.run(self._post(url, query, body))
        self.check("door_raw", status, (400, 403, 413))

    def signed(self, data: bytes) -> None:
        """Authenticated XML of any shape: 200 whatever it holds."""
        query, body = APP_CRYPTO.sign_callback(text_of(data))
        status = self.run(self._post(self.app_url, query, body.encode()))
        self.check("door_signed", status, (200,))

    def text(self, data: bytes) -> None:
        """A text message from a demo person: 200, never the error reply or an ERROR log."""
        user = USERS[data[0] % len(USERS)] if data else USERS[0]
        content = text_of(data[1:])
        self.history = (self.history + [(user, content)])[-6:]
        delivery = self.run(self.sender.text(user, content))
        self.check("door_text", delivery.status, (200,), delivery.reply_text or "")

    def aibot(self, data: bytes) -> None:
        """Authenticated AI-bot JSON of any shape: 200."""
        text = text_of(data)
        try:
            json.loads(text)
            plain = text
        except (ValueError, RecursionError):
            plain = json.dumps({"msgid": f"fz{next(self.ids)}", "from": {"userid": USERS[0]},
                                "msgtype": "text", "chattype": "single",
                                "text": {"content": text}}, ensure_ascii=False)
        ts, nonce = str(int(time.time())), str(next(self.ids))
        encrypt = self.aibot_crypto.encrypt(plain)
        query = {"msg_signature": signature(AIBOT_TOKEN, ts, nonce, encrypt), "timestamp": ts,
                 "nonce": nonce}
        status = self.run(self._post(self.aibot_url, query,
                                     json.dumps({"encrypt": encrypt}).encode()))
        self.check("door_aibot", status, (200,))

    async def _post(self, url: str, query: dict[str, str], body: bytes) -> int:
        async with self.http.post(url, params=query, data=body) as resp:
            await resp.read()
            return resp.status

    def close(self) -> None:
        async def stop() -> None:
            await self.http.close()
            await self.server.close()
            await self.fake_server.close()
        self.run(stop())
        self.loop.close()


# -- the engines ------------------------------------------------------------------------------

def corpus() -> dict[str, list[bytes]]:
    sender = AppCallbackSender(http=None, url="", crypto=APP_CRYPTO, agent_id=AGENT_ID)
    xml = [sender.message_xml("demo-liaison", "text", f"<Content>{cdata(t)}</Content>").encode()
           for t in ("帮助", "上报 三楼消防通道堵塞 @教学楼", "整改 YH2026-000001 时限:3天后")]
    xml.append(sender.message_xml("demo-principal", "event",
                                  "<Event>template_card_event</Event><EventKey>hz:pass:YH2026-1"
                                  "</EventKey><TaskId>t</TaskId><SelectedItems><SelectedItem>"
                                  "<QuestionKey>q</QuestionKey><OptionIds><OptionId>o</OptionId>"
                                  "</OptionIds></SelectedItem></SelectedItems>").encode())
    frame = json.dumps({"cmd": "aibot_msg_callback", "headers": {"req_id": "r1"}, "body": {
        "msgid": "m1", "chattype": "group", "chatid": "wr1", "from": {"userid": "demo-liaison"},
        "msgtype": "mixed", "mixed": {"msg_item": [{"msgtype": "text", "text": {
            "content": "@bot 上报 漏水"}}, {"msgtype": "image", "image": {"url": "https://x/y"}}]}
    }}, ensure_ascii=False).encode()
    texts = ["上报 三楼消防通道堵塞 @教学楼三楼", "整改 YH2026-000001 责任部门:总务处 时限:下周五",
             "复查 YH2026-000001 不通过 没整改", "自查 消防", "月报 2026-10", "导出台账 11月1日至11月30日",
             "值班表 明天 白班 孙值班", "请假 12月1日 12月3日", "查岗 随机 3", "稍后 YH2026-000001 3天",
             "延期 YH2026-000001 2026-12-31 材料未到", "否 @二楼", "更正 整改率 80%", "帮助"]
    return {
        "parse_callback": xml, "parse_callback_fields": [b"demo-liaison\x1ftext\x1f\xe4\xb8\x8a"],
        "extract_encrypt": [b"<xml><Encrypt><![CDATA[" + APP_CRYPTO.encrypt("x").encode()
                            + b"]]></Encrypt></xml>"],
        "decrypt": [base64.b64decode(APP_CRYPTO.encrypt("<xml/>"))],
        "aibot_frame": [frame], "aibot_body": [json.dumps(json.loads(frame)["body"]).encode()],
        "route": [t.encode() for t in texts], "dates": [t.encode() for t in (
            "明天", "3个工作日", "下周五", "2026-12-01", "12月1日至12月3日", "二〇二六年十月", "月底")],
        "door_raw": [b"%s\x1f%s\x1f%d\x1f42\x1f%s" % (door, b"a" * 40, int(time.time()), body)
                     for door, body in ((b"app", b"<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>"),
                                        (b"aibot", b'{"encrypt": "abc"}'))],
        "door_signed": xml, "door_text": [b"\x00" + t.encode() for t in texts],
        "door_aibot": [json.dumps(json.loads(frame)["body"]).encode()],
    }


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:                                   # flip a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:                                         # a hostile token
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and buf:                                 # cut a piece out
            del buf[pos:pos + rng.randint(1, 32)]
        elif op == 3 and buf:                                 # repeat a piece
            piece = bytes(buf[pos:pos + rng.randint(1, 16)])
            buf[pos:pos] = piece * rng.randint(2, 200)
        elif op == 4:                                         # splice another input
            other = rng.choice(pool)
            buf[pos:] = other[rng.randint(0, len(other)):]
        elif op == 5:                                         # random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 6:                                         # a digit written otherwise
            digits = [i for i, b in enumerate(buf) if 0x30 <= b <= 0x39]
            if digits:
                i = rng.choice(digits)
                buf[i:i + 1] = rng.choice(OTHER_DIGITS)
        elif buf:                                             # truncate
            del buf[rng.randint(0, len(buf)):]
    return bytes(buf[:60_000])


def targets(doors: Doors | None, names: list[str] | None) -> dict[str, Callable[[bytes], None]]:
    found = dict(PARSERS)
    if doors is not None:
        found.update({"door_raw": doors.raw, "door_signed": doors.signed,
                      "door_text": doors.text, "door_aibot": doors.aibot})
    return {k: v for k, v in found.items() if not names or k in names}


def one(name: str, fn: Callable[[bytes], None], data: bytes) -> None:
    STATS.runs[name] += 1
    try:
        fn(data)
    except Exception as exc:  # every exception out of a target is a finding
        crash(name, data, exc)


def run_random(table: dict[str, Callable[[bytes], None]], seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    seeds = corpus()
    pools = {name: list(seeds.get(name, [b""])) for name in table}
    names = sorted(table)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in names:
            pool = pools[name]
            data = mutate(rng, rng.choice(pool), pool)
            one(name, table[name], data)
            if len(pool) < 200 and rng.random() < 0.05:
                pool.append(data)  # keep a few mutants: later mutations start from them


def run_atheris(table: dict[str, Callable[[bytes], None]], seconds: float,
                finish: Callable[[], None]) -> None:
    names = sorted(table)
    deadline = time.monotonic() + seconds

    def test_one(data: bytes) -> None:
        if time.monotonic() > deadline:  # libFuzzer's own exit would skip the report
            report()
            finish()
            os._exit(1 if STATS.crashes else 0)
        if not data:
            return
        name = names[data[0] % len(names)]
        one(name, table[name], data[1:])

    workdir = Path(tempfile.mkdtemp(prefix="safebot-fuzz-atheris-"))
    atexit_dirs.append(workdir)
    corpus_dir = workdir / "corpus"
    corpus_dir.mkdir()
    for name, inputs in corpus().items():
        if name in table:
            for i, data in enumerate(inputs):
                (corpus_dir / f"{name}-{i}").write_bytes(bytes([names.index(name)]) + data)
    dictionary = workdir / "tokens.dict"
    dictionary.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in t) + '"\n'
                                  for t in TOKENS))
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds) + 5}", "-timeout=20",
                   "-rss_limit_mb=4096", f"-dict={dictionary}", "-max_len=8192",
                   "-print_final_stats=1", str(corpus_dir)], test_one)
    atheris.Fuzz()


def report() -> None:
    elapsed = time.monotonic() - STATS.started
    total = sum(STATS.runs.values())
    print(f"\n== fuzz_callbacks: {total} executions in {elapsed:.1f} s "
          f"({total / max(elapsed, 1e-9):.0f}/s)", flush=True)
    for name, count in sorted(STATS.runs.items()):
        print(f"   {name:<22} {count:>9}")
    print(f"== distinct crashes: {len(STATS.crashes)}")
    for kind, (_, data) in STATS.crashes.items():
        print(f"   {kind}\n      input: {data}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--targets", default="", help="comma-separated; default: all")
    parser.add_argument("--no-door", action="store_true", help="parsers only (fast)")
    args = parser.parse_args(argv)
    engine = args.engine if args.engine != "auto" else ("atheris" if atheris else "random")
    if engine == "atheris" and atheris is None:
        parser.error("atheris is not installed (pip install atheris), use --engine random")
    workdir = Path(tempfile.mkdtemp(prefix="safebot-fuzz-"))
    doors = None if args.no_door else Doors(workdir)
    table = targets(doors, [t for t in args.targets.split(",") if t] or None)
    print(f"fuzz_callbacks: engine {engine}, {args.seconds:.0f} s, targets "
          f"{', '.join(sorted(table))}", flush=True)
    def finish() -> None:
        if doors is not None:
            doors.close()
        for path in (workdir, *atexit_dirs):
            shutil.rmtree(path, ignore_errors=True)
    STATS.started = time.monotonic()
    try:
        if engine == "atheris":
            run_atheris(table, args.seconds, finish)
        else:
            run_random(table, args.seconds, args.seed)
    finally:
        report()
        finish()
    return 1 if STATS.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
