"""Mixed traffic through the real callback, on SQLite and PostgreSQL (issue 8, item 5).

    python -m bench.mixed_load [--db sqlite|postgres|both] [--connections 200] [--duration 60]
                               [--messages-rss 100000] [--pg-url URL]

What it does for each database, all on 127.0.0.1 and bounded in time:

1. a fresh database (SQLite file in a temporary directory; on PostgreSQL a database of its own,
   dropped at the end), ``safebot db upgrade``, the demo district plus bench schools (leader,
   deputy, liaison, duty person and teachers each), a duty shift running now for every duty
   person, and one hazard per school for ``隐患 <编号>``;
2. ``bench.fake_wecom_server`` (no rate limits) as WeCom's API, so the pushes of major hazards
   and duty notices are delivered somewhere, and ``safebot serve`` pointed at it;
3. **load**: an aiohttp client in this process with ``--connections`` concurrent connections,
   each carrying a fixed share of the senders one message at a time (a sender's messages stay
   in order: hazard reports are conversations), every message a distinct MsgId, validly
   signed and encrypted. The mix: hazard reports (``上报 描述 @位置`` and the step-by-step form,
   then area, level, 跳过, 确认; one in ten 重大), duty check-ins (签到, 平安, 交班, 值班) and
   queries (帮助, 清单 消防, 台账, 隐患 <编号>, 统计 for leaders). Requests are prepared before
   the clock starts (a warm-up measures how many are needed), replies kept and checked after it:
   every reply is decrypted and must be the answer that step expects;
4. **memory**: the service is restarted and sent ``--messages-rss`` more messages in ten
   batches (as fast as it takes them); its VmRSS is read after each batch, and the one after
   10% is compared with the one after 100% (PASS when within 20%). ``--tracemalloc`` (debug)
   runs that service under tracemalloc, 16 requests at a time, and prints the allocation
   sites that grew between the first batch and the last.

Errors = socket errors, non-200 answers, empty or undecryptable replies, and replies that are
not what the step expects (an error text, "正在处理" after the 3 s budget, a wrong form step).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from bench.callback_load import CpuMeter, Server, config_toml, free_port, loadavg, safebot_command
from bench.fake_wecom_server import CORP_ID, SECRET
from bot.app_xml import cdata
from bot.crypto import CallbackCrypto
from bot.db import Database, engine_url
from bot.sandbox.demo import PEOPLE, seed_demo
from bot.sandbox.sender import AppCallbackSender, Delivery
from models import duty, hazard_flow
from models.checklist import load_checklists
from models.hazard import Level
from models.org import LEADERS, Person, Role, Unit, UnitKind, add_role, get_identity

REPO = Path(__file__).resolve().parent.parent
CALLBACK_PATH = "/wecom/app/callback"
AGENT_ID = 1000002
TOKEN = "benchtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TEACHERS = 5            # teachers (成员) per bench school, besides leader, deputy, liaison, duty
STAFF = 4 + TEACHERS
RSS_BATCHES = 10        # the memory phase: RSS after each tenth; first vs last
RSS_TOLERANCE = 0.20
TRACED_IN_FLIGHT = 16   # --tracemalloc: requests under way at once (no overload backlog)
HEADERS = {"Content-Type": "text/xml"}

# description, location, the word for its area (清单 and the form's area step)
HAZARDS = [
    ("三楼东侧消防通道堵塞", "教学楼三楼", "消防"),
    ("灭火器压力不足", "宿舍楼二楼走廊", "消防"),
    ("化学实验室危化品混放，无专柜", "实验楼二楼", "危险化学品"),
    ("操场围墙开裂", "操场北侧", "校舍"),
    ("配电箱门未上锁", "教学楼一楼楼梯间", "校舍"),
    ("食堂冷藏柜温度计损坏", "学生食堂后厨", "食品"),
    ("校门口减速带缺失", "学校正门", "交通"),
    ("报告厅应急照明灯不亮", "综合楼一楼报告厅", "人员密集"),
    ("排水沟堵塞，雨天积水", "教学楼后侧", "防汛"),
    ("门卫室监控探头损坏", "学校东门", "治安"),
]
AREAS = sorted({h[2] for h in HAZARDS}) + ["校车", "特种设备", "传染病"]
MAJOR_SHARE = 0.1

# what each reply must contain (the templates under templates/)
ASK_DESCRIPTION = re.compile(r"^请描述隐患")
ASK_LOCATION = re.compile(r"请告诉我具体位置")
ASK_AREA = re.compile(r"这条隐患属于")
ASK_LEVEL = re.compile(r"隐患等级？")
ASK_PHOTO = re.compile(r"^请发送一张现场照片")
CONFIRM = re.compile(r"^请确认隐患信息")
REPORTED = {False: re.compile(r"^已上报隐患 YH\d{4}-\d{6}（一般）"),
            True: re.compile(r"^已上报隐患 YH\d{4}-\d{6}（重大）[\s\S]*已挂牌督办")}
HELP = re.compile(r"，你可以使用：")
LEDGER = re.compile(r"隐患台账（未销号）：共 \d+ 条")
STATS = re.compile(r"隐患统计")
DUTY_TODAY = re.compile(r"今日值班")
CHECKED_IN = re.compile(r"^签到成功：")
ALREADY_IN = re.compile(r"^你已于 .+ 签到")
ALL_SAFE = re.compile(r"^已报平安，本班值班结束")
HANDOVER = re.compile(r"^已记录交班留言：")
# what the door answers instead: a handler past REPLY_BUDGET_S, or one that raised
WORKING = (REPO / "templates/common/working.txt.j2").read_text(encoding="utf-8").strip()
FAILED = (REPO / "templates/common/error.txt.j2").read_text(encoding="utf-8").strip()


# --- the district ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sender:
    userid: str
    script: str   # reporter, leader or duty
    number: str   # a hazard this sender may see


def seed_district(*, session: Session, schools: int, now: datetime) -> list[Sender]:
    """The demo district, ``schools`` bench schools under its two townships, a shift running
    now for every duty person, one hazard per school; the senders, with their scripts."""
    if not seed_demo(session=session):
        raise RuntimeError("the benchmark database was not empty")
    units = {u.code: u for u in session.exec(select(Unit)).all()}
    people = [(userid, code, set(roles)) for userid, _, _, code, roles in PEOPLE]
    for n in range(schools):
        people += _bench_school(session, n, units)
    session.flush()
    numbers = _one_hazard_per_school(session, units, people, now)
    on_duty = _shifts_now(session, units, people, now)
    chain_number = {"JYJ": numbers["CD-SY"], "CD": numbers["CD-SY"], "CX": numbers["CX-ZX"]}
    senders = []
    for userid, code, roles in people:
        script = ("duty" if userid in on_duty else "leader" if roles & LEADERS else "reporter")
        senders.append(Sender(userid, script, numbers.get(code) or chain_number[code]))
    return senders


def _bench_school(session: Session, n: int, units: dict[str, Unit]) -> list[tuple]:
    code = f"LT{n + 1:03d}"
    township = units["CD" if n % 2 == 0 else "CX"]
    unit = Unit(code=code, name=f"压测第{n + 1}学校", kind=UnitKind.SCHOOL, parent_id=township.id)
    session.add(unit)
    session.flush()
    units[code] = unit
    staff = [("leader", "校长", Role.LEADER), ("deputy", "副校长", Role.DEPUTY),
             ("liaison", "安全办主任", Role.LIAISON), ("duty", "值班员", Role.DUTY)]
    staff += [(f"t{k + 1}", "教师", Role.MEMBER) for k in range(TEACHERS)]
    made = []
    for i, (suffix, title, role) in enumerate(staff):
        userid = f"{code.lower()}-{suffix}"
        person = Person(userid=userid, name=f"{title}{n + 1}-{i + 1}", title=title,
                        unit_id=unit.id, mobile=f"139{n + 1:04d}{i:04d}")
        session.add(person)
        session.flush()
        add_role(session=session, person_id=person.id, role=role)
        made.append((userid, code, {role}))
    return made


def _one_hazard_per_school(session: Session, units: dict[str, Unit], people: list[tuple],
                           now: datetime) -> dict[str, str]:
    """A hazard in every school and kindergarten, reported by someone of that unit."""
    checklists = load_checklists()
    numbers: dict[str, str] = {}
    for userid, code, _ in people:
        unit = units[code]
        if code in numbers or unit.kind not in (UnitKind.SCHOOL, UnitKind.KINDERGARTEN):
            continue
        description, location, word = HAZARDS[len(numbers) % len(HAZARDS)]
        [area] = checklists.find(word)
        hazard = hazard_flow.create(session=session, unit_id=unit.id,
                                    reporter=get_identity(session=session, userid=userid),
                                    description=description, location=location, area=area.key,
                                    level=Level.GENERAL, now=now,
                                    year=now.astimezone(TZ).year, photo_ids=[])
        numbers[code] = hazard.number
    return numbers


def _shifts_now(session: Session, units: dict[str, Unit], people: list[tuple],
                now: datetime) -> set[str]:
    """A 24-hour shift begun half an hour ago for every unit's (only-)duty person, led by the
    unit's principal; the duty persons."""
    ids = {p.userid: p.id for p in session.exec(select(Person)).all()}
    leaders = {code: userid for userid, code, roles in people if Role.LEADER in roles}
    on_duty: set[str] = set()
    for userid, code, roles in people:
        if roles != {Role.DUTY}:
            continue
        duty.set_slot(session=session, unit_id=units[code].id, day=now.astimezone(TZ).date(),
                      kind=duty.Kind.FULL, start_at=now - timedelta(minutes=30),
                      end_at=now + timedelta(hours=20), person_id=ids[userid],
                      leader_id=ids.get(leaders.get(code, "")), now=now)
        on_duty.add(userid)
    return on_duty


# --- what the senders say ----------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    text: str
    kind: str             # report, checkin or query
    expect: re.Pattern[str]
    label: str = ""       # how latencies are grouped: the command word, or the form's step

    @property
    def group(self) -> str:
        return self.label or self.text.split()[0]


def steps_for(sender: Sender, rng: random.Random) -> Iterator[Step]:
    scripts = {"reporter": reporter_steps, "leader": leader_steps, "duty": duty_steps}
    return scripts[sender.script](sender, rng)


def report_steps(rng: random.Random, *, step_by_step: bool) -> Iterator[Step]:
    """One hazard filed: the one-line form or the step-by-step one, then the form's steps."""
    description, location, area = rng.choice(HAZARDS)
    major = rng.random() < MAJOR_SHARE
    if step_by_step:
        yield Step("上报", "report", ASK_DESCRIPTION, "上报")
        yield Step(description, "report", ASK_LOCATION, "上报:描述")
        yield Step(location, "report", ASK_AREA, "上报:位置")
    else:
        yield Step(f"上报 {description} @{location}", "report", ASK_AREA, "上报 描述 @位置")
    yield Step(area, "report", ASK_LEVEL, "上报:领域")
    yield Step("重大" if major else "一般", "report", ASK_PHOTO, "上报:等级")
    yield Step("跳过", "report", CONFIRM, "上报:跳过")
    yield Step("确认", "report", REPORTED[major], f"上报:确认{'(重大)' if major else ''}")


def query(sender: Sender, rng: random.Random, what: str) -> Step:
    if what == "help":
        return Step("帮助", "query", HELP)
    if what == "checklist":
        area = rng.choice(AREAS)
        return Step(f"清单 {area}", "query", re.compile(rf"^【{area}[^】]*】隐患排查清单"))
    if what == "ledger":
        return Step("台账", "query", LEDGER)
    if what == "hazard":
        return Step(f"隐患 {sender.number}", "query",
                    re.compile(rf"^隐患 {re.escape(sender.number)}（"))
    if what == "stats":
        return Step("统计", "query", STATS)
    if what == "duty":
        return Step("值班", "query", DUTY_TODAY)
    raise ValueError(what)


REPORTER_MIX = {"report": 15, "report_steps": 5, "help": 10, "checklist": 20, "ledger": 15,
                "hazard": 35}
LEADER_MIX = {"stats": 30, "ledger": 15, "hazard": 25, "help": 10, "duty": 10, "report": 10}


def _sessions(sender: Sender, rng: random.Random, mix: dict[str, int]) -> Iterator[Step]:
    names, weights = list(mix), list(mix.values())
    while True:
        what = rng.choices(names, weights)[0]
        if what.startswith("report"):
            yield from report_steps(rng, step_by_step=what == "report_steps")
        else:
            yield query(sender, rng, what)


def reporter_steps(sender: Sender, rng: random.Random) -> Iterator[Step]:
    return _sessions(sender, rng, REPORTER_MIX)


def leader_steps(sender: Sender, rng: random.Random) -> Iterator[Step]:
    return _sessions(sender, rng, LEADER_MIX)


def duty_steps(sender: Sender, rng: random.Random) -> Iterator[Step]:
    """A shift: 签到, a few rounds of 值班 and 签到 again (already checked in), 平安 to close
    it; then the closed shift's 交班 notes and 值班, with a hazard report now and then."""
    yield Step(f"签到 {rng.choice(['门卫室', '值班室', '校门口'])}", "checkin", CHECKED_IN)
    for _ in range(rng.randint(2, 4)):
        yield query(sender, rng, "duty")
        yield Step("签到", "checkin", ALREADY_IN)
    yield Step("平安", "checkin", ALL_SAFE)
    while True:
        what = rng.choices(["duty", "handover", "report"], [45, 45, 10])[0]
        if what == "report":
            yield from report_steps(rng, step_by_step=False)
        elif what == "handover":
            note = rng.choice(["东门门禁故障，已报修", "夜间巡查两次，一切正常", "二楼走廊灯不亮"])
            yield Step(f"交班 {note}", "checkin", HANDOVER)
        else:
            yield query(sender, rng, "duty")


# --- requests ----------------------------------------------------------------------------------

@dataclass(slots=True)
class Item:
    target: str
    body: bytes
    step: Step
    userid: str


class Maker:
    """Signed, encrypted text callbacks, each with its own MsgId (the sandbox's sender code)."""

    def __init__(self) -> None:
        self.crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
        self.sender = AppCallbackSender(http=None, url="", crypto=self.crypto,  # type: ignore[arg-type]
                                        agent_id=AGENT_ID)

    def item(self, userid: str, step: Step) -> Item:
        content = f"<Content>{cdata(step.text)}</Content>"
        plaintext = self.sender.message_xml(userid, "text", content)
        query, body = self.crypto.sign_callback(plaintext, agent_id=AGENT_ID)
        return Item(f"{CALLBACK_PATH}?{urlencode(query)}", body.encode(), step, userid)


class Lane:
    """One connection's senders, taken in turn; a sender's messages go one at a time, in order."""

    def __init__(self, senders: list[tuple[Sender, Iterator[Step]]]) -> None:
        self.senders = senders
        self.turn = 0
        self.ready: deque[Item] = deque()
        self.made_late = 0  # items built during a measurement: the prepared ones ran out

    def build(self, maker: Maker) -> Item:
        sender, steps = self.senders[self.turn % len(self.senders)]
        self.turn += 1
        return maker.item(sender.userid, next(steps))

    def prepare(self, maker: Maker, count: int) -> None:
        self.ready.extend(self.build(maker) for _ in range(count))

    def take(self, maker: Maker) -> Item:
        if self.ready:
            return self.ready.popleft()
        self.made_late += 1
        return self.build(maker)


def make_lanes(senders: list[Sender], connections: int, seed: int) -> list[Lane]:
    order = list(senders)
    random.Random(seed).shuffle(order)
    scripted = [(s, steps_for(s, random.Random(f"{seed}:{s.userid}"))) for s in order]
    return [Lane(scripted[i::connections]) for i in range(min(connections, len(scripted)))]


# --- sending -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one stretch of sending got back; replies are checked afterwards (``check``)."""

    latencies: list[float] = field(default_factory=list)
    replies: list[tuple[Step, str, int, bytes | None]] = field(default_factory=list)
    seconds: float = 0.0


async def send_all(base: str, lanes: list[Lane], maker: Maker, *, until: float | None = None,
                   each: int | None = None, in_flight: int = 0) -> Outcome:
    """Every lane on its own connection: until the monotonic deadline ``until``, or ``each``
    messages per lane; what is in flight at the deadline is waited for. ``in_flight`` > 0
    caps the requests under way at once (the traced service is several times slower)."""
    out = Outcome()
    gate = asyncio.Semaphore(in_flight or len(lanes))
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=len(lanes), limit_per_host=len(lanes))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async def run(lane: Lane) -> None:
            sent = 0
            while (until is None or time.monotonic() < until) and (each is None or sent < each):
                item = lane.take(maker)
                sent += 1
                async with gate:
                    started = time.perf_counter()
                    try:
                        async with http.post(base + item.target, data=item.body,
                                             headers=HEADERS) as resp:
                            raw, status = await resp.read(), resp.status
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        raw, status = None, 0
                    out.latencies.append(time.perf_counter() - started)
                out.replies.append((item.step, item.userid, status, raw))

        started = time.perf_counter()
        await asyncio.gather(*(run(lane) for lane in lanes))
        out.seconds = time.perf_counter() - started
    return out


def by_group(out: Outcome) -> list[tuple[str, int, float, float]]:
    """(group, messages, p50 ms, p99 ms) per command or form step, slowest p99 first."""
    groups: dict[str, list[float]] = {}
    for (step, *_), latency in zip(out.replies, out.latencies):
        groups.setdefault(step.group, []).append(latency)
    rows = [(g, len(v), percentile(v, 0.5) * 1000, percentile(v, 0.99) * 1000)
            for g, v in groups.items()]
    return sorted(rows, key=lambda r: -r[3])


def run_timed(base: str, lanes: list[Lane], maker: Maker, seconds: float) -> Outcome:
    # the generator's own GC pauses would show as service latency: none while measuring
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(send_all(base, lanes, maker, until=time.monotonic() + seconds))
    finally:
        gc.enable()


@dataclass
class Check:
    counts: Counter = field(default_factory=Counter)   # error kind -> count
    kinds: Counter = field(default_factory=Counter)    # report/checkin/query -> messages
    samples: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(self.counts.values())

    def add(self, other: "Check") -> None:
        self.counts.update(other.counts)
        self.kinds.update(other.kinds)
        self.samples += other.samples[: max(0, 5 - len(self.samples))]


def check(outcome: Outcome, crypto: CallbackCrypto) -> Check:
    """Decrypt every reply and hold it against what its step expects."""
    result = Check()
    for step, userid, status, raw in outcome.replies:
        result.kinds[step.kind] += 1
        error = _error_of(step, status, raw, crypto)
        if error is None:
            continue
        kind, reply = error
        result.counts[kind] += 1
        if len(result.samples) < 5:
            result.samples.append(f"{kind}: {userid} sent {step.text!r}, expected "
                                  f"/{step.expect.pattern}/, got {reply[:160]!r}")
    return result


def _error_of(step: Step, status: int, raw: bytes | None,
              crypto: CallbackCrypto) -> tuple[str, str] | None:
    if raw is None:
        return "socket", ""
    if status != 200:
        return "non-200", f"HTTP {status}"
    if not raw:
        return "empty", ""
    try:
        reply = Delivery(200, crypto.open_reply(raw.decode())).reply_text or ""
    except Exception as exc:  # noqa: BLE001 - any failure to open it is the error counted
        return "undecryptable", repr(exc)
    if step.expect.search(reply):
        return None
    if reply.strip() == WORKING:
        return "over the 3 s budget", reply
    if reply.strip() == FAILED:
        return "handler error", reply
    return "unexpected reply", reply


# --- one database ------------------------------------------------------------------------------

class Target:
    """Where the service's data lives for one run: a SQLite file, or a PostgreSQL database of
    its own (created here, dropped in ``drop``)."""

    def __init__(self, kind: str, workdir: Path, pg_url: str) -> None:
        self.kind = kind
        self.admin = None
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'safebot.db'}"
            return
        base = make_url(engine_url(pg_url))
        name = f"safebot_mixed_{os.getpid()}"
        self.admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.name = name
        self.url = base.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False)

    def counts(self) -> dict[str, int]:
        engine = create_engine(engine_url(self.url))
        try:
            with engine.connect() as conn:
                return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                        for t in ("hazard", "processed_callback", "outbox")}
        finally:
            engine.dispose()

    def backend_pids(self) -> list[int]:
        """The PostgreSQL server processes serving this database (its CPU is the service's)."""
        if self.admin is None:
            return []
        with self.admin.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"),
                                     {"n": self.name}).scalars())

    def drop(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def write_config(workdir: Path, port: int, fake_port: int, url: str) -> Path:
    # requests are prepared before they are sent; a wider window than the default 300 s keeps
    # the prepared ones that one phase leaves to the next valid
    return config_toml(workdir / "safebot.toml", port=port, database_url=url,
                       api_base_url=f"http://127.0.0.1:{fake_port}", data_dir=workdir / "data",
                       replay_window_s=900, corp_id=CORP_ID, secret=SECRET, token=TOKEN)


def prepare(config: Path, url: str, schools: int) -> list[Sender]:
    proc = subprocess.run([*safebot_command(), "db", "upgrade", "--config", str(config)],
                          cwd=REPO, timeout=300, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"safebot db upgrade failed:\n{proc.stdout}\n{proc.stderr}")
    db = Database(url)
    try:
        return db.call(seed_district, schools=schools, now=datetime.now(timezone.utc))
    finally:
        db.close()


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and its parts (RssAnon: the heap; RssFile, RssShmem: mapped files, the WAL index)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                found[name] = int(value.split()[0])
    if "VmRSS" not in found:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return found


# --- debug mode: where the memory goes ---------------------------------------------------------

def serve_traced(config: str, out_dir: str) -> int:
    """``safebot serve`` with tracemalloc on; each SIGUSR1 writes a snapshot to ``out_dir``
    (``--tracemalloc``: the memory phase compares the first batch's with the last's)."""
    import itertools
    import tracemalloc

    tracemalloc.start(8)
    numbers = itertools.count(1)

    def dump(signum, frame) -> None:
        path = Path(out_dir) / f"snapshot-{next(numbers)}.tm"
        tracemalloc.take_snapshot().dump(str(path) + ".part")
        os.replace(str(path) + ".part", path)  # complete once it has its name
    signal.signal(signal.SIGUSR1, dump)
    from bot.cli import main as safebot_main
    return safebot_main(["serve", "--config", config])


def snapshot(service: Server, directory: Path, number: int, timeout: float = 120.0):
    import tracemalloc
    os.kill(service.proc.pid, signal.SIGUSR1)
    path = directory / f"snapshot-{number}.tm"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no tracemalloc snapshot from the service:\n{service.tail()}")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(path))


def print_growth(first, last, top: int = 15) -> None:
    import tracemalloc
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    first, last = first.filter_traces(ignore), last.filter_traces(ignore)
    print(f"tracemalloc: traced {sum(s.size for s in first.statistics('filename')) / 2**20:.1f} "
          f"MB after the first batch, "
          f"{sum(s.size for s in last.statistics('filename')) / 2**20:.1f} MB after the last; "
          "the biggest growth (allocation site, most recent frame last):")
    grew = sorted((s for s in last.compare_to(first, "traceback") if s.size_diff > 0),
                  key=lambda s: -s.size_diff)
    for stat in grew[:top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format()[-6:]:
            print(f"      {line}")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process still there (a pooled backend may have gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
            found[pid] = (int(stat[11]) + int(stat[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class DbResult:
    db: str
    messages: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    check: Check = field(default_factory=Check)
    made_late: int = 0
    cpu: str = ""
    other_cores: float | None = None
    rss_kb: list[tuple[int, int]] = field(default_factory=list)  # (messages, VmRSS kB)
    rss_check: Check = field(default_factory=Check)
    rss_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    pushes: str = ""

    @property
    def rps(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def rss_growth(self) -> float | None:
        if len(self.rss_kb) < 2:
            return None
        first, last = self.rss_kb[0][1], self.rss_kb[-1][1]
        return (last - first) / first

    @property
    def rss_pass(self) -> bool:
        growth = self.rss_growth
        return growth is not None and abs(growth) <= RSS_TOLERANCE


def run_database(kind: str, args: argparse.Namespace) -> DbResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"safebot-mixed-{kind}-"))
    target: Target | None = None
    servers: list[Server] = []
    result = DbResult(kind)
    try:
        target = Target(kind, workdir, args.pg_url)
        port, fake_port = free_port(), free_port()
        while fake_port == port:
            fake_port = free_port()
        config = write_config(workdir, port, fake_port, target.url)
        schools = max(0, math.ceil((args.users - len(PEOPLE)) / STAFF))
        senders = prepare(config, target.url, schools)
        mix = Counter(s.script for s in senders)
        print(f"[{kind}] {len(senders)} senders ({mix['reporter']} reporters, "
              f"{mix['leader']} leaders, {mix['duty']} duty persons on shift) in "
              f"{schools + 7} units")
        fake = Server("fake WeCom", [sys.executable, "-m", "bench.fake_wecom_server",
                                     "--port", str(fake_port), "--no-limits"],
                      fake_port, workdir / "fake.log")
        servers.append(fake)
        fake.start()
        serve_argv = [*safebot_command(), "serve", "--config", str(config)]
        service = Server("safebot serve", serve_argv, port, workdir / "serve-load.log")
        servers.append(service)
        service.start()
        base = f"http://127.0.0.1:{port}"
        maker = Maker()
        lanes = make_lanes(senders, args.connections, args.seed)
        load_phase(result, base, lanes, maker, service, fake, target, args)
        if args.messages_rss:
            service.stop()
            if args.tracemalloc:
                args.trace_dir = workdir
                serve_argv = [sys.executable, "-m", "bench.mixed_load", "--serve-traced",
                              str(config), "--trace-dir", str(workdir)]
            service = Server("safebot serve", serve_argv, port, workdir / "serve-rss.log")
            servers[-1] = service
            service.start()
            memory_phase(result, base, lanes, maker, service, args)
        result.pushes = fake_stats(fake_port)
        for server in servers:
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} died:\n{server.tail()}")
        result.counts = target.counts()
        return result
    finally:
        for server in reversed(servers):
            server.stop()
        if target is not None:
            target.drop()
        if args.keep:
            print(f"[{kind}] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def load_phase(result: DbResult, base: str, lanes: list[Lane], maker: Maker, service: Server,
               fake: Server, target: Target, args: argparse.Namespace) -> None:
    crypto = maker.crypto
    rate = 1500.0
    if args.warmup:
        for lane in lanes:
            lane.prepare(maker, 20)
        warm = run_timed(base, lanes, maker, args.warmup)
        warm_check = check(warm, crypto)
        rate = max(100.0, len(warm.replies) / warm.seconds)
        print(f"[{result.db}] warm-up: {len(warm.replies)} messages in {warm.seconds:.1f} s "
              f"({rate:.0f}/s), errors {warm_check.errors}")
        result.check.add(warm_check)  # a warm-up error is an error too
        for sample in warm_check.samples:
            print(f"    {sample}")
    per_lane = int(rate * args.duration * 1.5 / len(lanes)) + 20
    started = time.perf_counter()
    for lane in lanes:
        lane.prepare(maker, max(0, per_lane - len(lane.ready)))
    print(f"[{result.db}] prepared {per_lane * len(lanes)} callbacks in "
          f"{time.perf_counter() - started:.1f} s; measuring {args.duration} s with "
          f"{len(lanes)} connections")
    late_before = sum(lane.made_late for lane in lanes)
    backends = target.backend_pids()
    pg_before = cpu_seconds(backends)
    meter = CpuMeter([service.proc.pid, fake.proc.pid])
    out = run_timed(base, lanes, maker, args.duration)
    result.cpu, result.other_cores = meter.stop(out.seconds)
    if backends and result.other_cores is not None:
        pg_after = cpu_seconds(backends)
        pg = sum(pg_after[p] - pg_before[p] for p in pg_after if p in pg_before) / out.seconds
        result.other_cores = max(0.0, result.other_cores - pg)
        result.cpu += (f" (of which {len(backends)} PostgreSQL backends {pg:.2f}: other "
                       f"processes without them {result.other_cores:.2f})")
    result.made_late = sum(lane.made_late for lane in lanes) - late_before
    result.messages, result.seconds = len(out.replies), out.seconds
    result.p50_ms = percentile(out.latencies, 0.50) * 1000
    result.p99_ms = percentile(out.latencies, 0.99) * 1000
    result.max_ms = max(out.latencies, default=0.0) * 1000
    measured = check(out, crypto)
    result.check.add(measured)
    result.check.kinds = measured.kinds
    print(f"[{result.db}] load: {result.messages} messages in {result.seconds:.1f} s = "
          f"{result.rps:.0f}/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
          f"max {result.max_ms:.0f} ms, errors {measured.errors} {dict(measured.counts)}")
    if result.cpu:
        print(f"[{result.db}]       {result.cpu}")
    print(f"[{result.db}]       by command (messages, p50, p99): " + "; ".join(
        f"{g} {n} {p50:.0f}/{p99:.0f} ms" for g, n, p50, p99 in by_group(out)))
    for sample in measured.samples:
        print(f"    {sample}")


def memory_phase(result: DbResult, base: str, lanes: list[Lane], maker: Maker,
                 service: Server, args: argparse.Namespace) -> None:
    """``--messages-rss`` messages in ten batches on the freshly started service; VmRSS after
    each batch."""
    total = args.messages_rss
    batch = max(len(lanes), total // RSS_BATCHES)
    sent = 0
    snapshots: list = []
    started = time.perf_counter()
    while sent < total:
        each = max(1, min(batch, total - sent) // len(lanes))
        for lane in lanes:
            lane.prepare(maker, max(0, each - len(lane.ready)))
        out = asyncio.run(send_all(base, lanes, maker, each=each,
                                   in_flight=TRACED_IN_FLIGHT if args.tracemalloc else 0))
        sent += len(out.replies)
        batch_check = check(out, maker.crypto)
        result.rss_check.add(batch_check)
        mem = memory_kb(service.proc.pid)
        rss = mem["VmRSS"]
        result.rss_kb.append((sent, rss))
        if args.tracemalloc and (len(result.rss_kb) == 1 or sent >= total):
            snapshots.append(snapshot(service, args.trace_dir, len(snapshots) + 1))
        print(f"[{result.db}] memory: {sent:>7} messages  VmRSS {rss / 1024:7.1f} MB "
              f"(anon {mem.get('RssAnon', 0) / 1024:.1f}, file {mem.get('RssFile', 0) / 1024:.1f}, "
              f"shmem {mem.get('RssShmem', 0) / 1024:.1f})  "
              f"({len(out.replies) / out.seconds:.0f}/s, p99 "
              f"{percentile(out.latencies, 0.99) * 1000:.0f} ms, errors {batch_check.errors}"
              f"{' ' + str(dict(batch_check.counts)) if batch_check.errors else ''})  "
              f"{time.strftime('%H:%M:%S')}")
        for sample in batch_check.samples:
            print(f"    {sample}")
    result.rss_seconds = time.perf_counter() - started
    if len(snapshots) == 2:
        print_growth(*snapshots)


def fake_stats(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as resp:
            return json.dumps(json.loads(resp.read()))
    except OSError as exc:
        return f"unavailable ({exc})"


# --- report ------------------------------------------------------------------------------------

def report(results: list[DbResult], args: argparse.Namespace, load_before: str) -> bool:
    print(f"\n== {args.connections} connections, {args.duration} s of mixed traffic, "
          f"{args.users} senders (measured on this machine; see 'other processes') ==")
    print(f"{'db':<9}{'msg/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}   mix")
    load_ok = memory_ok = True
    for r in results:
        total = sum(r.check.kinds.values()) or 1
        mix = ", ".join(f"{k} {100 * n / total:.0f}%" for k, n in sorted(r.check.kinds.items()))
        print(f"{r.db:<9}{r.rps:8.0f}{r.p50_ms:9.1f}{r.p99_ms:9.1f}{r.check.errors:8d}   {mix}")
        load_ok &= r.check.errors == 0
    for r in results:
        print(f"{r.db}: {r.check.errors} errors {dict(r.check.counts) or ''}; "
              f"rows: {r.counts}; fake WeCom: {r.pushes}")
        if r.made_late:
            print(f"{r.db}: WARNING {r.made_late} callbacks were built during the measurement "
                  "(the prepared ones ran out): the rate is a little low")
        if r.other_cores is not None and r.other_cores > 0.25:
            print(f"{r.db}: the machine was BUSY (other processes {r.other_cores:.2f} cores)")
        if r.rss_kb:
            first, last = r.rss_kb[0], r.rss_kb[-1]
            verdict = "PASS" if r.rss_pass else "FAIL"
            print(f"{r.db}: memory: VmRSS after {first[0]:,} messages {first[1] / 1024:.1f} MB, "
                  f"after {last[0]:,} {last[1] / 1024:.1f} MB ({100 * r.rss_growth:+.1f}%; "
                  f"{last[0] / r.rss_seconds:.0f} msg/s, {r.rss_check.errors} errors) "
                  f"within {RSS_TOLERANCE:.0%}: {verdict}")
            memory_ok &= r.rss_pass
    print(f"load, zero errors (warm-up included): {'PASS' if load_ok else 'FAIL'}")
    if args.messages_rss:
        print(f"memory, VmRSS within {RSS_TOLERANCE:.0%}: {'PASS' if memory_ok else 'FAIL'} "
              "(errors of the memory phase are listed above, not judged: it runs at whatever "
              "rate the service takes)")
    print(f"load average before: {load_before}   after: {loadavg()}")
    return load_ok and memory_ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.mixed_load",
                                description="Mixed traffic through the real callback.")
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--connections", type=int, default=200, help="concurrent connections; 200")
    p.add_argument("--duration", type=int, default=60, help="seconds of measured load; 60")
    p.add_argument("--messages-rss", type=int, default=100_000,
                   help="messages of the memory phase (0: skip it); 100,000")
    p.add_argument("--pg-url", default=os.environ.get("SAFEBOT_TEST_POSTGRES_URL", DEFAULT_PG),
                   help="a PostgreSQL database to connect to; the run creates and drops its "
                        f"own beside it (default {DEFAULT_PG})")
    p.add_argument("--users", type=int, default=0,
                   help="distinct registered senders (default 3 per connection)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of discarded load; 3")
    p.add_argument("--seed", type=int, default=8, help="random seed of the traffic")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    p.add_argument("--tracemalloc", action="store_true",
                   help="debug: run the memory phase's service with tracemalloc and print what "
                        "grew between the first and the last batch (slows the service)")
    p.add_argument("--serve-traced", metavar="CONFIG", help=argparse.SUPPRESS)
    p.add_argument("--trace-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_traced:
        return args
    if args.connections < 1 or args.duration < 1 or args.messages_rss < 0:
        p.error("need --connections >= 1, --duration >= 1, --messages-rss >= 0")
    args.users = args.users or 3 * args.connections
    if args.users < args.connections:
        p.error("--users must be at least --connections (one sender talks on one connection)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_traced:
        return serve_traced(args.serve_traced, args.trace_dir)

    def on_term(signum, frame):  # run the finally blocks on SIGTERM/SIGHUP too
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    load_before = loadavg()
    print(f"load average before: {load_before}   cpus: {os.cpu_count()}")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = [run_database(kind, args) for kind in kinds]
    return 0 if report(results, args, load_before) else 1


if __name__ == "__main__":
    raise SystemExit(main())
