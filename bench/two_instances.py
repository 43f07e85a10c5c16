"""Two instances, one PostgreSQL (issue 8): nothing sent twice, nothing lost, no number twice.

    python -m bench.two_instances [--pg-url URL] [--messages N] [--duration S] [--users U]

What it does, all on 127.0.0.1 and bounded in count and time:

1. creates a fresh database beside the one ``--pg-url`` names (never touching that one),
   runs ``safebot db upgrade``, seeds the demo district plus one small school per user
   (principal, liaison, duty person), and drops the database at the end;
2. starts one fake WeCom process (``bench.fake_wecom_server``) listening on two ports, one per
   instance, so every push it records says which instance sent it and with which msgid;
3. seeds overdue rectifications (major and general) and starts instance A, waits for its
   catch-up sweep, seeds a second batch and starts instance B: both instances' sweeps have
   work, and both scheduler clocks keep running (every minute unless ``--sweep-every-min``);
4. puts a round-robin HTTP proxy in front of both ``/wecom/app/callback`` and sends the
   traffic through it: ``--users`` liaisons at once, each reporting hazards (上报 …, 消防, 一般
   or 重大, 跳过, 确认: a major one alerts four leaders at once), giving general ones a plan
   (整改 …: the duty person is told) and sending 帮助/台账/逾期/清单 in between; every
   message of a conversation may land on either instance;
5. seeds a third batch and waits for the periodic sweep of both instances (``--periodic``),
   waits until the outbox is drained, stops both instances gracefully, and checks:
   every outbox row sent, each exactly once (matched one to one with the fake's pushes by the
   msgid the row records, and by recipient and content), none dropped or suppressed by WeCom,
   both instances sent pushes, every hazard number unique and gapless per year (and every
   reporter told a different one), zero HTTP errors at the proxy, both instances got traffic,
   every reply the expected one, both instances' sweeps ran and queued, no error logged.

Each check is printed PASS or FAIL; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from yarl import URL

from bench.callback_load import REPO, Server, config_toml, free_port, safebot_command
from bench.fake_wecom_server import CORP_ID, SECRET, content_hash
from bot.crypto import CallbackCrypto
from bot.db import Database, engine_url
from bot.sandbox.demo import seed_demo
from bot.sandbox.sender import AppCallbackSender
from models import hazard_flow
from models.hazard import Hazard, Level, Status
from models.org import Person, Role, Unit, UnitKind, add_role, get_identity
from reminders.scheduler import sweep_minutes

DEFAULT_PG = (os.environ.get("SAFEBOT_TEST_POSTGRES_URL")
              or "postgresql://postgres@127.0.0.1:5432/test")
CALLBACK_PATH = "/wecom/app/callback"
AGENT_ID = 1000002
TOKEN = "twoinstancestoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TZ = ZoneInfo("Asia/Shanghai")
# Every major alert reaches the bureau's safety officer (demo-bureau), and WeCom takes 30 a
# minute per person: stay under that, or the outbox rightly holds the rest for a minute.
MAX_MAJORS = 12
CYCLE = 7                         # messages per user cycle: 上报 (5) + 整改 + one command
COMMANDS = ("帮助", "台账", "逾期", "清单")
PLAN = ("责任部门:总务处 责任人:{duty} 措施:清理杂物并张贴禁止堆放标识 资金:无需资金 "
        "时限:3天后 预案:设置警示标志，专人值守")
SWEEP_LINE = re.compile(r"reminder sweeps ran: queued (\d+)")
NUMBER = re.compile(r"YH(\d{4})-(\d{6})")
MEDIA = {"image", "file", "voice", "video"}  # uploaded when sent: the body is a media_id


@dataclass
class Settings:
    pg_url: str = DEFAULT_PG
    messages: int = 800
    users: int = 16
    duration: float = 60.0            # the traffic phase stops after this, whatever is left
    periodic: bool = True             # also wait for a periodic sweep of both instances
    sweep_every_min: int = 1
    overdue_per_batch: int = 2        # schools given an overdue major + general hazard
    drain_timeout: float = 180.0
    double_taps: int = 0              # users who then double-tap 确认 (see --double-tap)
    keep: bool = False
    seed: int = 1


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


@dataclass(frozen=True)
class School:
    code: str
    liaison: str
    duty_name: str


# --- the database --------------------------------------------------------------------------

def create_database(base_url: str) -> str:
    """A database of this run's own beside the named one; its URL."""
    base = make_url(engine_url(base_url))
    name = f"safebot_two_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    target = make_url(engine_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def upgrade_database(config: Path) -> None:
    proc = subprocess.run([*safebot_command(), "db", "upgrade", "--config", str(config)],
                          cwd=REPO, timeout=120, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"safebot db upgrade failed:\n{proc.stdout}\n{proc.stderr}")


def seed_schools(*, session: Session, count: int) -> list[School]:
    """One small school per user under the demo townships: principal, liaison, duty person."""
    townships = select(Unit).where(Unit.code.in_(["CD", "CX"]))
    parents = {u.code: u.id for u in session.exec(townships)}
    schools = []
    for i in range(count):
        code = f"T2-{i:03d}"
        unit = Unit(code=code, name=f"双实例测试学校{i}", kind=UnitKind.SCHOOL,
                    parent_id=parents["CD" if i % 2 == 0 else "CX"])
        session.add(unit)
        session.flush()
        for suffix, name, role in (("leader", f"校长{i}", Role.LEADER),
                                   ("liaison", f"联络员{i}", Role.LIAISON),
                                   ("duty", f"值班员{i}", Role.DUTY)):
            person = Person(userid=f"t2-{i:03d}-{suffix}", name=name, title=name,
                            unit_id=unit.id, mobile=f"139{i:04d}{len(suffix):04d}")
            session.add(person)
            session.flush()
            add_role(session=session, person_id=person.id, role=role)
        schools.append(School(code, f"t2-{i:03d}-liaison", f"值班员{i}"))
    return schools


def seed_overdue(*, session: Session, schools: list[School], batch: str) -> int:
    """A major and a general rectification, 40 days overdue, in each school: the overdue
    sweep escalates both at once (alerts and timely pushes to the leaders above)."""
    now = datetime.now(timezone.utc)
    today = now.astimezone(TZ).date()
    made = 0
    for school in schools:
        who = get_identity(session=session, userid=school.liaison)
        duty = school.liaison.replace("-liaison", "-duty")
        for level in (Level.MAJOR, Level.GENERAL):
            hazard = hazard_flow.create(
                session=session, unit_id=who.unit_id, reporter=who,
                description=f"批次{batch}逾期隐患（{level.value}）配电箱未上锁",
                location="配电房", area="fire", level=level, now=now,
                year=now.astimezone(TZ).year, photo_ids=[])
            _make_overdue(hazard, school.duty_name, duty, today - timedelta(days=40))
            made += 1
    return made


def _make_overdue(hazard: Hazard, responsible: str, userid: str, deadline) -> None:
    hazard.status, hazard.deadline = Status.PLANNED, deadline
    hazard.department, hazard.responsible, hazard.responsible_userid = "总务处", responsible, userid
    hazard.measures, hazard.funds, hazard.contingency = "加锁", "无需资金", "专人值守"


# --- configuration and processes -----------------------------------------------------------

def write_config(path: Path, *, port: int, db_url: str, api_port: int, data_dir: Path,
                 sweep_every_min: int) -> Path:
    return config_toml(path, port=port, database_url=db_url, data_dir=data_dir,
                       api_base_url=f"http://127.0.0.1:{api_port}", extra=f"""
[scheduler]
timezone = "Asia/Shanghai"
quiet_hours = "00:00-00:00"
sweep_every_min = {sweep_every_min}

[logging]
level = "INFO"
""", corp_id=CORP_ID, secret=SECRET, token=TOKEN)


def distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


class FakeProcess:
    """bench.fake_wecom_server on two ports, in its own session; stopped whatever happens."""

    def __init__(self, ports: list[int], log: Path) -> None:
        self.ports, self.log_path = ports, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "bench.fake_wecom_server", "--port", str(self.ports[0])]
        for port in self.ports[1:]:
            argv += ["--also-port", str(port)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        for port in self.ports:
            wait_port(port)

    async def stats(self, http: aiohttp.ClientSession, detail: bool = False) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports[0]}/stats" + ("?detail=1" if detail else "")
        async with http.get(url) as resp:
            return await resp.json()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._log.close()


def sweep_runs(log: Path) -> list[int]:
    """What each sweep pass of an instance queued, in order (its log lines)."""
    try:
        content = log.read_text(errors="replace")
    except OSError:
        return []
    return [int(m.group(1)) for m in SWEEP_LINE.finditer(content)]


async def wait_sweeps(server: Server, runs: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sweep_runs(server.log_path)) < runs:
        if server.proc is None or server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: no sweep pass #{runs} within {timeout:.0f} s")
        await asyncio.sleep(0.1)


def seconds_to_next_tick(every_min: int, now: datetime | None = None) -> float:
    """Until the scheduler's next sweep (reminders.scheduler: second 17 of those minutes)."""
    local = (now or datetime.now(TZ)).astimezone(TZ)
    minutes = {int(m) for m in sweep_minutes(every_min).split(",")}
    tick = local.replace(second=17, microsecond=0)
    if tick <= local:
        tick += timedelta(minutes=1)
    while tick.minute not in minutes:
        tick += timedelta(minutes=1)
    return (tick - local).total_seconds()


async def clear_of_tick(every_min: int, margin: float = 20.0) -> None:
    """Wait past the next periodic sweep if it is due within ``margin`` seconds, so a batch
    seeded now is found by the catch-up sweep of the instance started next, not by a tick."""
    left = seconds_to_next_tick(every_min)
    if left < margin:
        await asyncio.sleep(left + 3.0)


# --- the proxy -----------------------------------------------------------------------------

class RoundRobinProxy:
    """Each request to the next instance in turn; counts answers and errors per instance."""

    def __init__(self, backends: dict[str, int]) -> None:
        self.backends = backends
        self._turn = itertools.cycle(list(backends))
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.port = 0

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                          timeout=aiohttp.ClientTimeout(total=15))
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.http.close()

    async def forward(self, request: web.Request) -> web.Response:
        name = next(self._turn)
        body = await request.read()
        # raw_path: the query exactly as received (a decoded "+" would break the signature)
        target = URL(f"http://127.0.0.1:{self.backends[name]}{request.raw_path}", encoded=True)
        self.requests[name] += 1
        try:
            async with self.http.request(request.method, target, data=body, headers={
                    "Content-Type": request.headers.get("Content-Type", "text/xml")}) as resp:
                payload, status = await resp.read(), resp.status
                ctype = resp.headers.get("Content-Type", "text/plain")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self._error(name, f"{type(exc).__name__}: {exc}")
            return web.Response(status=502, text="bad gateway")
        if status != 200:
            self._error(name, f"HTTP {status}: {payload[:100]!r}")
        return web.Response(status=status, body=payload, headers={"Content-Type": ctype})

    def _error(self, name: str, what: str) -> None:
        self.errors[name] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{name}: {what}")


# --- the traffic ---------------------------------------------------------------------------

class Traffic:
    """Liaisons talking to the bot at once, through the proxy, each waiting for every reply."""

    def __init__(self, sender: AppCallbackSender, schools: list[School], *, messages: int,
                 duration: float, rng: random.Random) -> None:
        self.sender, self.schools, self.rng = sender, schools, rng
        self.budget, self.deadline = messages, time.monotonic() + duration
        self.sent = 0
        self.majors = 0
        self.numbers: list[str] = []
        self.unexpected: list[str] = []
        self.failed = 0                    # no answer at all (non-200, an exception)
        self.latencies: list[float] = []

    async def run(self) -> float:
        started = time.monotonic()
        await asyncio.gather(*(self.user(s) for s in self.schools))
        return time.monotonic() - started

    def _take_cycle(self) -> bool:
        if self.budget < CYCLE or time.monotonic() > self.deadline:
            return False
        self.budget -= CYCLE
        return True

    async def user(self, school: School) -> None:
        while self._take_cycle():
            number, major = await self.report(school.liaison)
            if number and not major:
                await self.say(school.liaison, f"整改 {number} "
                               + PLAN.format(duty=school.duty_name), "整改方案已记录")
            else:
                await self.say(school.liaison, "帮助", "你可以使用")
            command = self.rng.choice(COMMANDS)
            await self.say(school.liaison, command, "你可以使用" if command == "帮助" else "")

    async def report(self, user: str) -> tuple[str | None, bool]:
        major = self.majors < MAX_MAJORS and self.rng.random() < 0.25
        self.majors += major
        if not await self.to_confirmation(user, major):
            return None, major
        reply = await self.say(user, "确认", "挂牌督办" if major else "整改 YH")
        found = NUMBER.search(reply)
        if found:
            self.numbers.append(found.group(0))
        return (found.group(0) if found else None), major

    async def to_confirmation(self, user: str, major: bool) -> bool:
        """上报 … up to the question 请确认; False (and the conversation left) if a step
        was not answered as expected."""
        tag = f"{user}-{self.sent}"
        steps = ((f"上报 压测隐患{tag} 楼道灭火器过期 @教学楼{self.rng.randint(1, 5)}楼", "领域"),
                 ("消防", "一般"), ("重大" if major else "一般", "照片"), ("跳过", "请确认"))
        for said, expect in steps:
            if not await self.say(user, said, expect):
                await self.say(user, "取消", "")
                return False
        return True

    async def double_tap(self, user: str) -> int:
        """确认 sent twice at once (a double tap): with nothing else in flight the round robin
        hands one to each instance. How many hazards the two replies announce (1 is right)."""
        if not await self.to_confirmation(user, False):
            return -1
        replies = await asyncio.gather(self.say(user, "确认", ""), self.say(user, "确认", ""))
        numbers = [m.group(0) for m in map(NUMBER.search, replies) if m]
        self.numbers += numbers
        return len(numbers)

    async def say(self, user: str, said: str, expect: str) -> str:
        """Send one message; its reply text ('' if none). Unexpected replies are counted."""
        self.sent += 1
        started = time.perf_counter()
        try:
            delivery = await self.sender.text(user, said)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.failed += 1
            self._unexpected(user, said, f"{type(exc).__name__}")
            return ""
        self.latencies.append(time.perf_counter() - started)
        reply = delivery.reply_text or ""
        if delivery.status != 200:
            self.failed += 1
        if delivery.status != 200 or not reply or expect not in reply:
            self._unexpected(user, said, f"HTTP {delivery.status}: {reply[:80]!r}")
            return ""
        return reply

    def _unexpected(self, user: str, said: str, got: str) -> None:
        self.unexpected.append(f"{user} said {said[:20]!r}, got {got}")


# --- the checks ----------------------------------------------------------------------------

def outbox_rows(db_url: str) -> list[dict[str, Any]]:
    engine = create_engine(engine_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, key, channel, recipient, msgtype, payload, status, result, "
                "attempts, last_error FROM outbox ORDER BY id")).mappings().all()
    finally:
        engine.dispose()
    return [{**r, "hash": content_hash(r["payload"]),
             "msgid": str((r["result"] or {}).get("msgid", ""))} for r in rows]


def hazard_numbers(db_url: str) -> tuple[list[str], dict[int, int]]:
    engine = create_engine(engine_url(db_url))
    try:
        with engine.connect() as conn:
            numbers = [r[0] for r in conn.execute(text("SELECT number FROM hazard"))]
            counters = dict(conn.execute(text("SELECT year, last FROM hazard_counter")).all())
    finally:
        engine.dispose()
    return numbers, counters


def check_deliveries(rows: list[dict[str, Any]], pushes: list[dict[str, Any]],
                     instances: dict[int, str]) -> list[Check]:
    """Outbox rows against what the fake WeCom received: every row sent, each exactly once.

    A row records the msgid WeCom answered when it was sent. A push sent twice (two instances
    sending one row, or a re-send after a lost mark) is a second message/send call: its msgid
    belongs to no row, and its recipient and content appear once more than in the outbox.
    """
    checks = []
    by_status = Counter(r["status"] for r in rows)
    unsent = [r for r in rows if r["status"] != "sent"]
    checks.append(Check(
        "every outbox row was sent", bool(rows) and not unsent,
        f"{len(rows)} rows: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
        + "".join(f"; #{r['id']} {r['key']} {r['status']} {r['last_error'][:60]}"
                  for r in unsent[:5])))

    sent_rows = [r for r in rows if r["status"] == "sent" and r["channel"] == "app"]
    push_msgids = Counter(p["msgid"] for p in pushes)
    pushes_by_msgid = {p["msgid"]: p for p in pushes}
    lost = [r for r in sent_rows if push_msgids[r["msgid"]] == 0]
    twice = [r for r in sent_rows if push_msgids[r["msgid"]] > 1]
    wrong = [r for r in sent_rows if push_msgids[r["msgid"]] == 1 and not _same(
        r, pushes_by_msgid[r["msgid"]])]
    row_msgids = Counter(r["msgid"] for r in sent_rows)
    shared = [m for m, n in row_msgids.items() if n > 1]
    strays = [p for p in pushes if row_msgids[p["msgid"]] == 0]
    checks.append(Check(
        "each sent row reached WeCom exactly once (by its msgid)",
        not (lost or twice or wrong or shared or strays),
        f"{len(sent_rows)} rows, {len(pushes)} message/send pushes; lost {len(lost)}, "
        f"sent twice {len(twice) + len(strays)}, different content {len(wrong)}, "
        f"msgid shared {len(shared)}"
        + "".join(f"; row #{r['id']} {r['key']} not received" for r in lost[:3])
        + "".join(f"; push #{p['id']} to {p['to']} ({p['msgtype']}) belongs to no row"
                  for p in strays[:3])))

    want = Counter(_identity(r["recipient"], r["msgtype"], r["hash"]) for r in sent_rows)
    got = Counter(_identity(p["to"], p["msgtype"], p["hash"]) for p in pushes)
    extra, missing = got - want, want - got
    checks.append(Check(
        "pushes per recipient and content = outbox rows (no duplicate, none lost)",
        not extra and not missing,
        f"{sum(got.values())} received, {sum(want.values())} rows; "
        f"{sum(extra.values())} extra, {sum(missing.values())} missing"
        + "".join(f"; extra to {k[0]} ({k[1]})" for k in list(extra)[:3])
        + "".join(f"; missing to {k[0]} ({k[1]})" for k in list(missing)[:3])))

    suppressed = [p for p in pushes if p["dropped"] or p["duplicate"]]
    checks.append(Check(
        "no push dropped by WeCom's limits or duplicate check", not suppressed,
        f"{sum(p['dropped'] for p in pushes)} dropped (over 30/min or 1000/h), "
        f"{sum(p['duplicate'] for p in pushes)} suppressed as duplicates"))

    per = Counter(instances.get(p["port"], f"port {p['port']}") for p in pushes)
    checks.append(Check(
        "both instances sent pushes", all(per[name] > 0 for name in instances.values()),
        ", ".join(f"{name} {per[name]}" for name in instances.values())))
    return checks


def _identity(to: str, msgtype: str, content: str) -> tuple[str, str, str]:
    return (to, msgtype, "media" if msgtype in MEDIA else content)


def _same(row: dict[str, Any], push: dict[str, Any]) -> bool:
    return _identity(row["recipient"], row["msgtype"], row["hash"]) == _identity(
        push["to"], push["msgtype"], push["hash"])


def check_numbers(numbers: list[str], counters: dict[int, int], told: list[str]) -> list[Check]:
    """Hazard numbers: unique, 1..n without a gap in every year, the counter at n; and no two
    reporters were told the same number."""
    per_year: dict[int, list[int]] = {}
    for number in numbers:
        m = NUMBER.fullmatch(number)
        if m is None:
            per_year.setdefault(0, []).append(-1)
            continue
        per_year.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    problems = []
    for year, seqs in sorted(per_year.items()):
        dupes = [s for s, n in Counter(seqs).items() if n > 1]
        if dupes:
            problems.append(f"{year}: {len(dupes)} numbers twice")
        if sorted(set(seqs)) != list(range(1, len(set(seqs)) + 1)):
            problems.append(f"{year}: gaps in 1..{max(seqs)}")
        if counters.get(year) != len(seqs):
            problems.append(f"{year}: counter at {counters.get(year)}, {len(seqs)} hazards")
    twice = [n for n, c in Counter(told).items() if c > 1]
    unknown = set(told) - set(numbers)
    return [
        Check("every hazard number unique and gapless per year", bool(numbers) and not problems,
              f"{len(numbers)} hazards, years "
              + ", ".join(f"{y}: 1..{max(s)}" for y, s in sorted(per_year.items()))
              + ("; " + "; ".join(problems) if problems else "")),
        Check("every reporter told a different, real number", bool(told) and not twice
              and not unknown,
              f"{len(told)} numbers told; {len(twice)} told twice, {len(unknown)} not in the "
              "database"),
    ]


def check_sweeps(runs: dict[str, list[int]], *, periodic: bool) -> Check:
    need = 2 if periodic else 1
    ok = all(len(r) >= need and sum(r) > 0 for r in runs.values())
    return Check("both instances' sweeps ran and queued pushes"
                 + (" (catch-up and periodic)" if periodic else " (catch-up)"), ok,
                 "; ".join(f"{name}: {len(r)} passes, queued {'+'.join(map(str, r)) or '-'}"
                           for name, r in runs.items()))


def check_logs(logs: dict[str, Path]) -> Check:
    bad = {}
    for name, path in logs.items():
        lines = path.read_text(errors="replace").splitlines()
        hits = [l for l in lines if " ERROR " in l or "Traceback" in l or " CRITICAL " in l]
        if hits:
            bad[name] = hits
    return Check("no error logged by either instance", not bad,
                 "; ".join(f"{n}: {len(h)} lines, first: {h[0][:160]}" for n, h in bad.items())
                 or "none")


# --- the run -------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_drained(db_url: str, fake: FakeProcess, http: aiohttp.ClientSession,
                       timeout: float) -> tuple[bool, float]:
    """Until no row is pending and the fake's count stopped moving; (drained, seconds)."""
    started = time.monotonic()
    engine = create_engine(engine_url(db_url))
    last, steady = -1, 0
    try:
        while time.monotonic() - started < timeout:
            with engine.connect() as conn:
                pending = conn.execute(text(
                    "SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar_one()
            count = (await fake.stats(http))["pushes"]
            steady = steady + 1 if (pending == 0 and count == last) else 0
            if steady >= 3:
                return True, time.monotonic() - started
            last = count
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()
    return False, time.monotonic() - started


class TwoInstances:
    """One run: its work dir, database, fake WeCom, two instances and the proxy in front."""

    def __init__(self, settings: Settings, say) -> None:
        self.settings, self.say = settings, say
        self.workdir = Path(tempfile.mkdtemp(prefix="safebot-two-"))
        self.db_url = ""
        self.servers: list[Server] = []
        self.fake: FakeProcess | None = None
        self.proxy: RoundRobinProxy | None = None
        self.api_ports = distinct_ports(2)
        self.serve_ports = [p for p in distinct_ports(4) if p not in self.api_ports][:2]

    async def setup(self) -> tuple[Database, list[School]]:
        """The database (upgraded, the demo district and the users' schools) and the fake."""
        self.db_url = create_database(self.settings.pg_url)
        self.say(f"database {make_url(self.db_url).database} (dropped at the end), "
                 f"work dir {self.workdir}")
        self.fake = FakeProcess(self.api_ports, self.workdir / "fake.log")
        self.fake.start()
        configs = [write_config(self.workdir / f"{name}.toml", port=port, db_url=self.db_url,
                                api_port=api, data_dir=self.workdir / "data",  # shared, as NFS
                                sweep_every_min=self.settings.sweep_every_min)
                   for name, port, api in zip("AB", self.serve_ports, self.api_ports)]
        upgrade_database(configs[0])
        self.servers = [Server(f"instance {name}", [*safebot_command(), "serve", "--config",
                                                    str(cfg)], port, self.workdir / f"{name}.log")
                        for name, cfg, port in zip("AB", configs, self.serve_ports)]
        db = Database(self.db_url)
        db.call(seed_demo)
        return db, db.call(seed_schools, count=self.settings.users)

    async def start_instances(self, db: Database, batches: list[list[School]]) -> int:
        """A, then B, each after a batch of overdue work its catch-up sweep finds."""
        started, seeded = time.monotonic(), 0
        for server, batch, name in zip(self.servers, batches, "AB"):
            await clear_of_tick(self.settings.sweep_every_min)
            seeded += db.call(seed_overdue, schools=batch, batch=name)
            server.start()
            await wait_sweeps(server, 1)
        self.say(f"instances A (:{self.serve_ports[0]}) and B (:{self.serve_ports[1]}) up in "
                 f"{time.monotonic() - started:.1f} s, each after a catch-up sweep with work")
        return seeded

    async def talk(self, http: aiohttp.ClientSession, schools: list[School]
                   ) -> tuple[Traffic, list[int]]:
        """The traffic through the proxy, then the double taps (if asked for)."""
        self.proxy = RoundRobinProxy({"A": self.serve_ports[0], "B": self.serve_ports[1]})
        await self.proxy.start()
        sender = AppCallbackSender(http=http, url=f"http://127.0.0.1:{self.proxy.port}"
                                   + CALLBACK_PATH, crypto=CallbackCrypto(TOKEN, AES_KEY, CORP_ID),
                                   agent_id=AGENT_ID)
        s = self.settings
        traffic = Traffic(sender, schools, messages=s.messages, duration=s.duration,
                          rng=random.Random(s.seed))
        took = await traffic.run()
        self.say(f"traffic: {traffic.sent} messages from {len(schools)} users in {took:.1f} s "
                 f"({traffic.sent / took:.0f}/s), {len(traffic.numbers)} hazards reported "
                 f"({traffic.majors} major); callback p50 "
                 f"{percentile(traffic.latencies, 0.5) * 1000:.0f} ms, p99 "
                 f"{percentile(traffic.latencies, 0.99) * 1000:.0f} ms through the proxy")
        taps = [await traffic.double_tap(school.liaison) for school in schools[:s.double_taps]]
        return traffic, taps

    async def periodic_sweeps(self, runs_before: list[int]) -> None:
        wait = seconds_to_next_tick(self.settings.sweep_every_min) + 30
        self.say(f"waiting for both instances' periodic sweep (up to {wait:.0f} s)")
        for server, before in zip(self.servers, runs_before):
            await wait_sweeps(server, before + 1, timeout=wait)

    async def settle(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """Wait for the outbox to drain, stop both instances gracefully (a push in flight is
        sent and marked), and take what the fake received."""
        drained, drain_s = await wait_drained(self.db_url, self.fake, http,
                                              self.settings.drain_timeout)
        self.say(f"outbox {'drained' if drained else 'NOT drained'} {drain_s:.1f} s after "
                 "the traffic")
        for server in self.servers:
            server.stop()
        return await self.fake.stats(http, detail=True)

    async def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        if self.fake is not None:
            self.fake.stop()
        if self.db_url:
            drop_database(self.db_url)
        if self.settings.keep:
            self.say(f"kept {self.workdir} (the instances' and the fake's logs)")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def run(settings: Settings, say=print) -> Report:
    """The whole run; the report's checks say whether it passed."""
    it = TwoInstances(settings, say)
    try:
        db, schools = await it.setup()
        try:
            k = settings.overdue_per_batch
            batches = [schools[i * k:(i + 1) * k] or schools[:k] for i in range(3)]
            seeded = await it.start_instances(db, batches[:2])
            runs_before = [len(sweep_runs(s.log_path)) for s in it.servers]
            if settings.periodic:  # work for the next tick of both clocks
                seeded += db.call(seed_overdue, schools=batches[2], batch="C")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                traffic, taps = await it.talk(http, schools)
                if settings.periodic:
                    await it.periodic_sweeps(runs_before)
                stats = await it.settle(http)
        finally:
            db.close()
        report = Report(figures=[
            f"{seeded} overdue hazards seeded; proxy requests "
            + ", ".join(f"{n} {c}" for n, c in sorted(it.proxy.requests.items()))
            + "; pushes sent by " + ", ".join(f"{n} {stats['by_port'].get(str(p), 0)}"
                                              for n, p in zip("AB", it.api_ports))])
        report.checks = collect_checks(settings, it.servers, it.proxy, traffic, stats,
                                       it.db_url, dict(zip(it.api_ports, "AB")))
        if taps:
            report.checks.append(Check(
                "a double-tapped 确认 on both instances files one hazard", set(taps) == {1},
                f"{len(taps)} double taps filed {'+'.join(map(str, taps))} hazards"))
        return report
    finally:
        await it.close()


def collect_checks(settings: Settings, servers: list[Server], proxy: RoundRobinProxy,
                   traffic: Traffic, stats: dict[str, Any], db_url: str,
                   instances: dict[int, str]) -> list[Check]:
    rows = outbox_rows(db_url)
    pushes = [p for p in stats["list"] if not p["to"].startswith("webhook:")]
    numbers, counters = hazard_numbers(db_url)
    logs = {s.name.split()[-1]: s.log_path for s in servers}
    errors = sum(proxy.errors.values())
    return [
        *check_deliveries(rows, pushes, instances),
        *check_numbers(numbers, counters, traffic.numbers),
        Check("zero HTTP errors at the proxy", errors == 0 and sum(proxy.requests.values()) > 0,
              f"{sum(proxy.requests.values())} requests, {errors} errors"
              + "".join(f"; {s}" for s in proxy.error_samples)),
        Check("both instances got traffic", all(proxy.requests[n] > 0 for n in logs),
              ", ".join(f"{n} {proxy.requests[n]}" for n in logs)),
        Check("every reply was the expected one", not traffic.unexpected and traffic.sent > 0,
              f"{traffic.sent} messages, {len(traffic.unexpected)} unexpected"
              + "".join(f"; {u}" for u in traffic.unexpected[:3])),
        check_sweeps({n: sweep_runs(p) for n, p in logs.items()}, periodic=settings.periodic),
        check_logs(logs),
    ]


def parse_args(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(prog="python -m bench.two_instances",
                                description="Two safebot instances on one PostgreSQL.")
    p.add_argument("--pg-url", default=DEFAULT_PG,
                   help="a PostgreSQL server to create the run's database on (default "
                        "$SAFEBOT_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test)")
    p.add_argument("--messages", type=int, default=800, help="callbacks to send; 800")
    p.add_argument("--duration", type=float, default=60.0,
                   help="the most seconds of traffic; 60")
    p.add_argument("--users", type=int, default=16, help="liaisons talking at once; 16")
    p.add_argument("--sweep-every-min", type=int, default=1,
                   help="the instances' sweep period in minutes; 1")
    p.add_argument("--no-periodic", action="store_true",
                   help="do not wait for a periodic sweep (catch-up sweeps only)")
    p.add_argument("--double-tap", type=int, default=0, metavar="N",
                   help="after the traffic, N users send 确认 twice at once, one to each "
                        "instance (off by default: see bench/README.md)")
    p.add_argument("--keep", action="store_true", help="keep the work dir with the logs")
    args = p.parse_args(argv)
    if args.messages < CYCLE or args.users < 1 or args.duration <= 0:
        p.error(f"need --messages >= {CYCLE}, --users >= 1, --duration > 0")
    return Settings(pg_url=args.pg_url, messages=args.messages, users=args.users,
                    duration=args.duration, periodic=not args.no_periodic,
                    sweep_every_min=args.sweep_every_min, keep=args.keep,
                    double_taps=min(args.double_tap, args.users))


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)

    def on_term(signum, frame):  # run the finally blocks on SIGTERM/SIGHUP too
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    report = asyncio.run(run(settings))
    for line in report.figures:
        print(line)
    for check in report.checks:
        print(check)
    print("ALL PASS" if report.ok else "SOME CHECKS FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
