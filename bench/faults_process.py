"""Process faults: ``kill -9`` of the service mid-dispatch and mid-conversation, and PostgreSQL
restarted under callback load. Each scenario runs the real ``safebot serve`` as a subprocess
and prints every check it makes with PASS or FAIL; the exit code is 1 if any check failed.

    python -m bench.faults_process                          # every scenario
    python -m bench.faults_process kill-dispatch --backends sqlite
    python -m bench.faults_process pg-restart --restart-shared --pg-url postgresql://...

Scenarios (see bench/README.md for what each one checks and why):

- ``kill-dispatch``: pushes queued in bulk plus major-hazard alerts reported through the
  callback, a slow fake WeCom (rate limits on) in its own process; ``kill -9`` while the outbox
  is sending, restart, wait until the outbox has drained. Every row sent, none delivered twice,
  no lease left behind; what "twice" could mean and what guards it is printed.
- ``kill-conversation``: a user halfway through 上报; ``kill -9``, restart, WeCom re-delivers the
  last answered message (it must be ignored), the user finishes: one hazard with every answer.
  Also several users' 确认 in flight at the kill, re-delivered by WeCom after the restart.
- ``pg-restart``: several users reporting hazards through signed callbacks (WeCom's retries
  emulated: same MsgId again on no answer), PostgreSQL restarted in the middle; the service
  must recover by itself. By default a private PostgreSQL cluster (initdb in a temporary
  directory) is restarted, so nobody else's database is disturbed; ``--restart-shared``
  restarts the machine's cluster with ``pg_ctlcluster`` instead.

kill-dispatch and kill-conversation run on SQLite and on PostgreSQL (a scratch database beside
``--pg-url``, dropped afterwards).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import aiohttp
from sqlalchemy import insert, select

from bench.harness import (WORKING_REPLY, CallbackClient, Exchange, FakeWeComProcess,
                           PrivatePostgres, ServiceProcess, SeenPush, content_digest,
                           free_port, prepare_database, scratch_postgres, write_config)
from bot.db import Database

DEFAULT_PG = os.environ.get("SAFEBOT_TEST_POSTGRES_URL",
                            "postgresql://postgres@127.0.0.1:5432/test")
REAL_LEASE_S = 60.0            # models/outbox.py: claim(lease=60 s)
DUPLICATE_CHECK_S = 1800       # bot/wecom_api.py: duplicate_check_interval
NUMBER = re.compile(r"YH\d{4}-\d{6}")
ALERTED = re.compile(r"已通知 (\d+) 位")


# --- reporting -------------------------------------------------------------------------------

class Report:
    """Checks printed as they are made; ``failed`` counts the FAILs."""

    def __init__(self, title: str, out: Callable[[str], None] = print) -> None:
        self.out, self.failed, self.passed = out, 0, 0
        self.failures: list[str] = []
        self.out(f"\n== {title} ==")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.passed += ok
        self.failed += not ok
        if not ok:
            self.failures.append(name)
        self.out(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f" — {detail}" if detail else ""))
        return ok

    def info(self, text: str) -> None:
        for line in text.splitlines():
            self.out(f"        {line}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float,
                pause: float = 0.2) -> bool:
    """Poll an async predicate; True once it holds, False at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(pause)
    return await predicate()


# --- database reads --------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    id: int
    key: str
    recipient: str
    msgtype: str
    payload: dict[str, Any]
    status: str
    attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    sent_at: datetime | None
    next_attempt_at: datetime | None = None

    @property
    def digest(self) -> str:
        return content_digest(self.recipient, self.msgtype, self.payload)


def outbox_rows(db: Database) -> list[Row]:
    from models.outbox import OutboxMessage as O

    def read(*, session) -> list[Row]:
        got = session.execute(select(O.id, O.key, O.recipient, O.msgtype, O.payload, O.status,
                                     O.attempts, O.lease_owner, O.lease_until, O.sent_at,
                                     O.next_attempt_at)
                              .where(O.channel == "app").order_by(O.id)).all()
        return [Row(*r[:8], as_utc(r[8]), as_utc(r[9]), as_utc(r[10])) for r in got]
    return db.call(read)


def hazards_tagged(db: Database, tag: str) -> list[dict[str, Any]]:
    """Hazards whose description ends with the word ``tag`` (each dialogue has its own)."""
    from models.hazard import Hazard

    def read(*, session) -> list[dict[str, Any]]:
        got = session.execute(select(Hazard.number, Hazard.description, Hazard.location,
                                     Hazard.area, Hazard.level)
                              .where(Hazard.description.contains(tag))).all()
        return [dict(zip(("number", "description", "location", "area", "level"), r))
                for r in got if r[1].split()[-1] == tag]
    return db.call(read)


def dedupe_keys(db: Database, keys: list[str]) -> set[str]:
    from models.dedupe import ProcessedCallback as P

    def read(*, session) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            found |= set(session.execute(select(P.key).where(P.key.in_(keys[i:i + 500])))
                         .scalars())
        return found
    return db.call(read)


def conversation_state(db: Database, key: str) -> str | None:
    from models.conversation import Conversation

    def read(*, session) -> str | None:
        return session.execute(select(Conversation.state)
                               .where(Conversation.key == key)).scalar()
    return db.call(read)


# --- a user reporting a hazard, step by step -------------------------------------------------

def next_answer(reply: str, tag: str, n: int, *, level: str = "一般",
                area: str = "消防") -> str | None:
    """What a user answers to the bot's question in the 上报 dialogue (None: not a question
    of that dialogue). Order matters: the confirmation repeats the words of earlier steps."""
    if "请确认隐患信息" in reply:
        return "确认"
    if "现场照片" in reply:
        return "跳过"
    if "隐患等级" in reply or "「一般」或「重大」" in reply:
        return level
    if "具体位置" in reply:
        return f"教学楼{n}楼"
    if "领域" in reply:
        return area
    if "请描述隐患" in reply:
        return f"消防通道堵塞 {tag}"
    return None


@dataclass
class Dialogue:
    user: str
    tag: str
    exchanges: list[Exchange] = field(default_factory=list)
    number: str | None = None       # the hazard number the bot answered with
    ended: str = ""                 # reported | reply lost | unexpected | cut off


async def report_hazard(client: CallbackClient, user: str, tag: str, n: int,
                        deadline: float) -> Dialogue:
    """One 上报 conversation driven by the replies, as a person would: an error reply or no
    reply makes them send the same words again (a new message, a new MsgId)."""
    dialogue = Dialogue(user, tag)
    words = f"上报 消防通道堵塞 {tag} @教学楼{n}楼"
    while time.monotonic() < deadline:
        ex = await client.send(user, words)
        dialogue.exchanges.append(ex)
        if not ex.answered or ex.empty or ex.error_reply:
            await asyncio.sleep(0.3)
            continue                          # WeCom gave up, or nothing came back: again
        reply = ex.reply or ""
        if WORKING_REPLY in reply:
            await asyncio.sleep(1.0)
            continue
        found = NUMBER.search(reply)
        if "已上报隐患" in reply and found:
            dialogue.number, dialogue.ended = found.group(0), "reported"
            return dialogue
        if "没有听懂" in reply and words == "确认":
            dialogue.ended = "reply lost"     # filed before; the reply never arrived
            return dialogue
        answer = next_answer(reply, tag, n)
        if answer is None:
            dialogue.ended = f"unexpected reply: {reply[:60]!r}"
            return dialogue
        words = answer
    dialogue.ended = "cut off"
    return dialogue


# --- scenario: kill -9 while the outbox is dispatching ---------------------------------------

@dataclass
class DispatchPlan:
    bulk: int = 1500              # pushes queued at once
    members: int = 100            # to this many members (bulk / members must stay under 30)
    reports: int = 6              # major hazards reported through the callback meanwhile
    kill_after: float = 0.3       # kill once WeCom received this share of the bulk's rest
    lease_s: float | None = None  # None: the real 60 s lease (plain ``safebot serve``)
    wecom_delay_s: float = 0.2    # the fake WeCom answers every call this late


REPORTERS = ("demo-liaison", "cxzx-liaison")   # two schools of two townships


def queue_bulk(db: Database, plan: DispatchPlan, tag: str, part: range) -> None:
    """Pushes ``part`` of the bulk, distinct contents, ``bulk / members`` per member in all."""
    from models.outbox import PENDING, OutboxMessage

    now = utcnow()
    rows = [{"key": f"fault:{tag}:{i}", "channel": "app",
             "recipient": f"fault-member-{i % plan.members:03d}", "msgtype": "text",
             "payload": {"content": f"故障演练 {tag} 第{i}条"}, "urgent": False,
             "status": PENDING, "attempts": 0, "next_attempt_at": now, "last_error": "",
             "result": {}, "created_at": now} for i in part]

    def fill(*, session) -> None:
        session.execute(insert(OutboxMessage.__table__), rows)
    db.call(fill)


async def major_reports(client: CallbackClient, count: int, tag: str) -> list[Dialogue]:
    """``count`` major hazards, reported by two liaisons at once, step by step."""
    async def one_reporter(user: str, indexes: range) -> list[Dialogue]:
        done = []
        for i in indexes:
            dialogue = Dialogue(user, f"{tag}-{i}")
            words = f"上报 危化品混放无专柜 {tag}-{i} @实验楼{i}楼"
            for _ in range(8):
                ex = await client.send(user, words)
                dialogue.exchanges.append(ex)
                found = NUMBER.search(ex.reply or "")
                if found and "已上报隐患" in (ex.reply or ""):
                    dialogue.number = found.group(0)
                    break
                words = next_answer(ex.reply or "", f"{tag}-{i}", i, level="重大",
                                    area="危险化学品") or words
            done.append(dialogue)
        return done
    halves = await asyncio.gather(*(one_reporter(u, range(k, count, len(REPORTERS)))
                                    for k, u in enumerate(REPORTERS)))
    return [d for half in halves for d in half]


@dataclass
class KillSnapshot:
    at: datetime
    sent: int
    leased: list[Row]
    pending: int
    received: int            # pushes WeCom had received when the dust settled


async def snapshot_after_kill(db: Database, wecom, killed_at: datetime,
                              settle_s: float) -> KillSnapshot:
    await asyncio.sleep(settle_s)   # requests the dead process had in flight may still land
    rows = outbox_rows(db)
    leased = [r for r in rows if r.status == "pending" and r.lease_owner]
    return KillSnapshot(killed_at, sum(r.status == "sent" for r in rows), leased,
                        sum(r.status == "pending" for r in rows), await wecom.received())


def deliveries(rows: list[Row], pushes: list[SeenPush]) -> dict[int, list[SeenPush]]:
    """Each outbox row's pushes at WeCom, matched by recipient and content."""
    by_digest: dict[str, list[SeenPush]] = {}
    for push in pushes:
        by_digest.setdefault(push.digest, []).append(push)
    return {r.id: by_digest.get(r.digest, []) for r in rows}


async def kill_dispatch(url: str, wecom, workdir: Path, plan: DispatchPlan,
                        report: Report) -> Report:
    """``wecom``: a started FakeWeComProcess or LocalFakeWeCom (rate limits on)."""
    db = Database(url)
    port = free_port()
    service = ServiceProcess(write_config(workdir, database_url=url, port=port,
                                          api_base_url=wecom.url),
                             port, workdir / "serve.log", lease_s=plan.lease_s)
    lease_s = plan.lease_s or REAL_LEASE_S
    tag = os.urandom(3).hex()
    try:
        await wecom.set_faults(delay_s=plan.wecom_delay_s)
        report.info(f"safebot serve up in {await service.start():.1f} s (pid {service.pid}); "
                    f"WeCom answers each call after {plan.wecom_delay_s} s, rate limits on; "
                    f"outbox lease {lease_s:.0f} s")
        first = plan.bulk // 3  # keeps the outbox busy while the hazards are reported
        queue_bulk(db, plan, tag, range(first))
        async with CallbackClient(service.callback_url) as client:
            dialogues = await major_reports(client, plan.reports, tag)
        queue_bulk(db, plan, tag, range(first, plan.bulk))  # ... and then the rest
        target = await wecom.received() + int((plan.bulk - first) * plan.kill_after)
        await until(lambda: _received_at_least(wecom, target), 120, 0.05)
        killed_at = utcnow()
        service.kill9()
        snap = await snapshot_after_kill(db, wecom, killed_at, plan.wecom_delay_s + 0.5)
        report.info(f"{len(dialogues)} major hazards reported while a third of the bulk "
                    f"was sent, then the rest queued; kill -9 once WeCom had {target}+ "
                    f"pushes: {snap.sent} rows marked sent, {len(snap.leased)} "
                    f"leased (in flight), {snap.pending - len(snap.leased)} waiting; WeCom "
                    f"had received {snap.received} pushes when the dust settled")
        report.check("the kill hit the outbox mid-dispatch", bool(snap.leased)
                     and snap.pending > 0, f"{len(snap.leased)} rows leased at the kill")
        restarted_at = utcnow()
        report.info(f"restarted in {await service.start():.1f} s (pid {service.pid})")
        up_at = utcnow()
        drained = await until(lambda: _drained(db), lease_s + 90, 0.5)
        drain_s = (utcnow() - up_at).total_seconds()
        rows, pushes = outbox_rows(db), await _settled_pushes(wecom)
        _check_dispatch(report, db, rows, pushes, snap, dialogues, lease_s, drained, drain_s,
                        restarted_at)
    finally:
        service.kill9()  # everything is checked by now; no need to wait for a graceful stop
        db.close()
    return report


async def _received_at_least(wecom, count: int) -> bool:
    return await wecom.received() >= count


async def _drained(db: Database) -> bool:
    now = datetime.now(timezone.utc)
    return not any(r.status == "pending" and not _held(r, now) for r in outbox_rows(db))


def _held(row: Row, now: datetime) -> bool:
    """A reminder queued during the run but held for later (the quiet hours: a run in the
    evening queues the nightly duty check for the morning): not due, never tried."""
    return (row.status == "pending" and row.attempts == 0 and not row.lease_owner
            and row.next_attempt_at is not None and row.next_attempt_at > now + timedelta(minutes=5))


DONE = {"sent", "merged"}  # merged: a reminder sent as a line of a grouped message


async def _settled_pushes(wecom) -> list[SeenPush]:
    previous = -1
    for _ in range(20):
        pushes = await wecom.pushes()
        if len(pushes) == previous:
            return pushes
        previous = len(pushes)
        await asyncio.sleep(0.2)
    return pushes


def _check_dispatch(report: Report, db: Database, rows: list[Row], pushes: list[SeenPush],
                    snap: KillSnapshot, dialogues: list[Dialogue], lease_s: float,
                    drained: bool, drain_s: float, restarted_at: datetime) -> None:
    now = datetime.now(timezone.utc)
    held = [r for r in rows if _held(r, now)]
    statuses = Counter(r.status for r in rows if r not in held)
    report.check("every outbox row was sent after the restart", drained
                 and set(statuses) <= DONE,
                 f"{dict(statuses)} of {len(rows)} rows, drained {drain_s:.1f} s after the "
                 "new instance was up" + (f"; {len(held)} held for the morning (quiet hours), "
                                          "not due yet" if held else ""))
    report.check("no row is left leased", not any(r.lease_owner or r.lease_until for r in rows))
    latest = max((r.lease_until for r in snap.leased if r.lease_until), default=None)
    bound = snap.at + timedelta(seconds=lease_s + 1)
    report.check("the killed instance's leases expire on their own",
                 latest is None or latest <= bound,
                 "latest lease ended " + (f"{(latest - snap.at).total_seconds():.1f} s after "
                                          "the kill" if latest else "— none"))
    leased_ids = {r.id for r in snap.leased}
    resent = [r for r in rows if r.id in leased_ids and r.sent_at and r.sent_at >= restarted_at]
    report.check("rows in flight at the kill were sent again by the new instance",
                 len(resent) == len(leased_ids), f"{len(resent)} of {len(leased_ids)}")
    per_row = deliveries([r for r in rows if r.status == "sent"], pushes)
    delivered = {rid: sum(p.delivered for p in got) for rid, got in per_row.items()}
    twice = [rid for rid, n in delivered.items() if n > 1]
    never = [rid for rid, n in delivered.items() if n == 0]
    report.check("every row delivered to its member exactly once", not twice and not never,
                 f"{len(per_row) - len(twice) - len(never)} once, {len(twice)} twice, "
                 f"{len(never)} never" + (f" ({statuses['merged']} reminders went out "
                                          "merged into others)" if statuses["merged"] else ""))
    caught = [rid for rid, got in per_row.items() if any(p.duplicate for p in got)]
    report.check("nothing dropped by WeCom's per-member limits",
                 not any(p.dropped for p in pushes),
                 f"{sum(p.dropped for p in pushes)} dropped of {len(pushes)} received")
    gaps = [max(p.at for p in got) - min(p.at for p in got)
            for got in per_row.values() if len(got) > 1]
    report.check("every re-send came inside WeCom's duplicate-check interval",
                 all(g < DUPLICATE_CHECK_S for g in gaps),
                 f"{len(gaps)} rows sent twice, longest gap {max(gaps, default=0):.0f} s "
                 f"(interval {DUPLICATE_CHECK_S} s)")
    _check_major(report, db, rows, per_row, dialogues)
    report.info(_window_note(len(snap.leased), len(caught), lease_s))


def _check_major(report: Report, db: Database, rows: list[Row],
                 per_row: dict[int, list[SeenPush]], dialogues: list[Dialogue]) -> None:
    filed = [hazards_tagged(db, d.tag) for d in dialogues]
    report.check("every major hazard reported during the dispatch exists once",
                 all(d.number for d in dialogues) and all(len(f) == 1 for f in filed),
                 f"{sum(len(f) == 1 for f in filed)} of {len(dialogues)}")
    told = sum(int(m.group(1)) for d in dialogues
               for m in [ALERTED.search(d.exchanges[-1].reply or "")] if m)
    alerts = [r for r in rows if r.key.startswith("major:")]
    once = [r for r in alerts if sum(p.delivered for p in per_row.get(r.id, [])) == 1]
    report.check("every leader alerted about every major hazard exactly once",
                 bool(alerts) and len(once) == len(alerts) == told,
                 f"{len(alerts)} alert cards for the {told} leaders the replies named, "
                 f"{len(once)} delivered once")


def _window_note(in_flight: int, caught: int, lease_s: float) -> str:
    return (
        f"What 'twice' can mean here: {in_flight} rows were leased (in flight) at the kill. "
        f"{caught} of them had reached WeCom but\n"
        "their 'sent' mark died with the process; when their lease ran out "
        f"({lease_s:.0f} s) the new instance sent them again. The service marks each chunk\n"
        "of 25 as soon as it is back, so the window is one WeCom round trip per chunk, and it "
        "sends every app message with\n"
        f"enable_duplicate_check (duplicate_check_interval {DUPLICATE_CHECK_S} s): WeCom drops "
        "the second copy (counted above as a re-send).\n"
        "So delivery is at-least-once to WeCom and once to the person, provided the service "
        f"is back within {DUPLICATE_CHECK_S} s minus the lease\n"
        "and the content is unchanged. Not covered by this fake: group webhooks and AI-bot "
        "pushes have no duplicate check\n"
        "(a re-sent one is seen twice), and real WeCom may refuse a template card re-sent "
        "with the same task_id (the row\n"
        "would then be marked failed although its first copy was delivered).")


# --- scenario: kill -9 in the middle of a conversation ---------------------------------------

@dataclass
class ConversationPlan:
    in_flight_users: tuple[str, ...] = ("cd-liaison", "cx-liaison", "cdyey-liaison",
                                        "cxyey-liaison", "demo-admin", "cdsy-deputy")
    lease_s: float | None = None
    mid_turn: bool = True         # a second kill, aimed between a turn's two transactions


USER = "demo-liaison"


async def kill_conversation(url: str, wecom, workdir: Path, plan: ConversationPlan,
                            report: Report) -> Report:
    db = Database(url)
    port = free_port()
    service = ServiceProcess(write_config(workdir, database_url=url, port=port,
                                          api_base_url=wecom.url),
                             port, workdir / "serve-conv.log", lease_s=plan.lease_s)
    tag = "K" + os.urandom(3).hex()
    try:
        await wecom.set_faults(reset=True)
        report.info(f"safebot serve up in {await service.start():.1f} s (pid {service.pid})")
        async with CallbackClient(service.callback_url, retries=0) as client:
            first = await _first_half(client, tag)
            confirms = await _ready_to_confirm(client, plan.in_flight_users, tag + "a")
            in_flight = await _confirm_and_kill(client, service, confirms, _first_answer)
            report.info(f"kill -9 with {USER} halfway through 上报 (state "
                        f"{conversation_state(db, USER)}) and {len(in_flight)} other users' "
                        "确认 sent at once, as the first of them was answered")
            report.info(f"restarted in {await service.start():.1f} s (pid {service.pid})")
            await _finish_dialogue(report, db, client, first, tag)
            await _in_flight_outcome(report, db, client, in_flight, "at the first answer")
            if plan.mid_turn:
                confirms = await _ready_to_confirm(client, plan.in_flight_users, tag + "b")
                in_flight = await _confirm_and_kill(client, service, confirms,
                                                    _turn_begun_not_done(db, confirms))
                report.info("kill -9 again, the moment one 确认's MsgId was recorded and its "
                            f"hazard not yet; restarted in {await service.start():.1f} s")
                await _in_flight_outcome(report, db, client, in_flight, "mid-turn")
        await _check_alerts_once(report, db, wecom, tag)
    finally:
        service.kill9()  # everything is checked by now; no need to wait for a graceful stop
        db.close()
    return report


async def _first_half(client: CallbackClient, tag: str) -> list[Exchange]:
    steps = [(f"上报 化学实验室危化品混放 {tag} @实验楼二楼", "领域"), ("危险化学品", "隐患等级")]
    done = []
    for words, expected in steps:
        ex = await client.send(USER, words)
        if expected not in (ex.reply or ""):
            raise RuntimeError(f"{words!r} got {ex.tries} {ex.reply!r}")
        done.append(ex)
    return done


async def _ready_to_confirm(client: CallbackClient, users: tuple[str, ...],
                            tag: str) -> list[Confirm]:
    """Bring each user to the confirmation step of a hazard of their own."""
    async def one(i: int, user: str) -> Confirm:
        mine = f"{tag}-{i}"
        words = f"上报 消防通道堵塞 {mine} @教学楼{i}楼"
        for _ in range(6):
            ex = await client.send(user, words)
            if "请确认隐患信息" in (ex.reply or ""):
                return Confirm(user, mine, client.new_msg_id())
            words = next_answer(ex.reply or "", mine, i) or words
        raise RuntimeError(f"{user} never reached the confirmation: {ex.reply!r}")
    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))


@dataclass
class Confirm:
    """One user's 确认, about to be sent: its MsgId is fixed beforehand."""

    user: str
    tag: str
    msg_id: str
    exchange: Exchange | None = None


async def _confirm_and_kill(client: CallbackClient, service: ServiceProcess,
                            confirms: list[Confirm],
                            moment: Callable[[list[asyncio.Task]], Awaitable[None]]
                            ) -> list[Confirm]:
    """Every user sends 确认 at once; the service is killed at ``moment``, while the others
    are somewhere inside it."""
    sends = [asyncio.create_task(client.send(c.user, "确认", msg_id=c.msg_id))
             for c in confirms]
    await moment(sends)
    service.kill9()
    for c, ex in zip(confirms, await asyncio.gather(*sends)):
        c.exchange = ex
    return confirms


async def _first_answer(sends: list[asyncio.Task]) -> None:
    await asyncio.wait(sends, timeout=30, return_when=asyncio.FIRST_COMPLETED)


def _turn_begun_not_done(db: Database, confirms: list[Confirm]
                         ) -> Callable[[list[asyncio.Task]], Awaitable[None]]:
    """Wait until some 确认 has its dedupe row but not yet its hazard (the handler is
    between the two transactions); failing that, until the first answer."""
    keys = {f"app:msg:{c.msg_id}": c.tag for c in confirms}

    def caught() -> bool:
        recorded = dedupe_keys(db, list(keys))
        return any(not hazards_tagged(db, keys[k]) for k in recorded)

    async def moment(sends: list[asyncio.Task]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(t.done() for t in sends):
            if await asyncio.to_thread(caught):
                return
        await _first_answer(sends)
    return moment


async def _finish_dialogue(report: Report, db: Database, client: CallbackClient,
                           first: list[Exchange], tag: str) -> None:
    retry = await client.send(USER, first[-1].text, msg_id=first[-1].msg_id)
    report.check("WeCom's re-delivery of a message answered before the kill is ignored",
                 retry.empty, f"same MsgId again: {', '.join(retry.tries)}")
    rest = [("重大", "现场照片"), ("跳过", "请确认隐患信息"), ("确认", "已上报隐患")]
    replies = []
    for words, expected in rest:
        ex = await client.send(USER, words)
        replies.append(ex)
        if expected not in (ex.reply or ""):
            break
    report.check("the conversation went on where it stood at the kill",
                 len(replies) == 3 and all(e in (x.reply or "") for x, (_, e) in
                                           zip(replies, rest)),
                 "after the restart: " + " → ".join(f"{x.text}: {(x.reply or '')[:10]!r}"
                                                  for x in replies))
    found = hazards_tagged(db, tag)
    want = {"description": f"化学实验室危化品混放 {tag}", "location": "实验楼二楼",
            "area": "chemicals", "level": "major"}
    report.check("the hazard exists once with every answer", len(found) == 1 and all(
        found[0][k] == v for k, v in want.items()), f"{found}")
    keys = [ex.dedupe_key for ex in first + replies]
    recorded = dedupe_keys(db, keys)
    report.check("one dedupe row for every message of the dialogue", recorded == set(keys),
                 f"{len(recorded)} of {len(keys)}")


async def _in_flight_outcome(report: Report, db: Database, client: CallbackClient,
                             confirms: list[Confirm], when: str) -> None:
    """WeCom re-delivers every 确认 that got no answer; a user who still has no answer then
    sends 确认 again (a new message), as people do. Count the hazards."""
    outcomes: Counter[str] = Counter()
    lost: list[str] = []
    unanswered: list[Confirm] = []
    for c in confirms:
        ex = c.exchange
        assert ex is not None
        again = ex if ex.answered else await client.send(c.user, "确认", msg_id=c.msg_id)
        filed = len(hazards_tagged(db, c.tag))
        if ex.answered:
            outcomes["answered before the kill"] += 1
        elif again.reply and "已上报隐患" in again.reply:
            outcomes["processed on WeCom's re-delivery"] += 1
        elif again.empty and filed:
            outcomes["filed before the kill, reply lost"] += 1
        else:
            outcomes["lost"] += 1
            lost.append(f"{c.user} (re-delivery answered {', '.join(again.tries)}, "
                        f"conversation {conversation_state(db, c.user)})")
        if not (again.reply and "已上报隐患" in again.reply):
            unanswered.append(c)
    report.info(f"确认 in flight at the kill ({when}): "
                + "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
    report.check(f"no 确认 in flight at the kill ({when}) was lost", not lost,
                 "" if not lost else
                 f"{'; '.join(lost)}. WeCom's re-delivery was answered as a duplicate although "
                 "the killed turn never finished (see models/dedupe.py: an unfinished turn's row "
                 "should be taken over by a retry 1-60 s later)")
    for c in unanswered:
        await client.send(c.user, "确认")
    counts = {c.user: len(hazards_tagged(db, c.tag)) for c in confirms}
    report.check(f"every hazard in flight at the kill ({when}) is filed exactly once, also "
                 "after its user, left without an answer, sends 确认 again",
                 all(n == 1 for n in counts.values()),
                 f"{len(unanswered)} users sent 确认 again; hazards per user: "
                 + ", ".join(f"{u} {n}" for u, n in counts.items()))


async def _check_alerts_once(report: Report, db: Database, wecom, tag: str) -> None:
    found = hazards_tagged(db, tag)
    if len(found) != 1:
        return
    number = found[0]["number"]
    await until(lambda: _drained_major(db), 120, 0.3)
    rows = [r for r in outbox_rows(db) if r.key.startswith("major:")
            and number in str(r.payload)]
    per_row = deliveries(rows, await _settled_pushes(wecom))
    once = [r for r in rows if sum(p.delivered for p in per_row[r.id]) == 1]
    report.check("the major hazard's alert reached each leader exactly once",
                 len(rows) == 4 and len(once) == 4,
                 f"{len(once)} of {len(rows)} cards delivered once "
                 f"({', '.join(sorted(r.recipient for r in rows))})")


async def _drained_major(db: Database) -> bool:
    return not any(r.status == "pending" and r.key.startswith("major:")
                   for r in outbox_rows(db))


# --- scenario: PostgreSQL restarted under load -----------------------------------------------

@dataclass
class RestartPlan:
    senders: tuple[str, ...] = ("demo-liaison", "cxzx-liaison", "cdyey-liaison",
                                "cxyey-liaison")
    before_s: float = 4.0         # load before the restart
    after_s: float = 10.0         # load after PostgreSQL is back
    down_s: float = 0.0           # 0: a plain restart; else stopped this long, then started
    recover_within_s: float = 15.0


class SharedPostgres:
    """The machine's cluster, restarted with pg_ctlcluster (affects everyone using it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> None:
        pass

    def restart(self, down_s: float = 0.0) -> float:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        started = time.monotonic()
        if down_s <= 0:
            subprocess.run([*ctl, "restart"], check=True, timeout=120)
        else:
            try:
                subprocess.run([*ctl, "stop"], check=True, timeout=120)
                time.sleep(down_s)
            finally:
                subprocess.run([*ctl, "start"], check=True, timeout=120)
        return time.monotonic() - started

    def stop(self) -> None:
        """Make sure it is up again, whatever happened."""
        for _ in range(60):
            if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
                return
            time.sleep(1)


@dataclass
class HealthLog:
    samples: list[tuple[float, int | None, str]] = field(default_factory=list)

    async def watch(self, service: ServiceProcess, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                got = await service.health(http)
                self.samples.append((time.monotonic(), got.get("http"), got.get("status", "")))
                await asyncio.sleep(0.2)

    def first_ok_after(self, moment: float) -> float | None:
        return next((t for t, code, status in self.samples
                     if t >= moment and code == 200 and status == "ok"), None)

    def worst_between(self, start: float, end: float) -> str:
        seen = {f"{code} {status}".strip() for t, code, status in self.samples
                if start <= t <= end}
        return ", ".join(sorted(seen)) or "no samples"


async def pg_restart(postgres, workdir: Path, plan: RestartPlan, report: Report) -> Report:
    """``postgres``: a PrivatePostgres or SharedPostgres; its ``url`` is where scratch
    databases are made."""
    wecom = FakeWeComProcess(workdir / "wecom-pg.log")
    await wecom.start()
    with scratch_postgres(postgres.url) as url:
        prepare_database(url)
        port = free_port()
        service = ServiceProcess(write_config(workdir, database_url=url, port=port,
                                              api_base_url=wecom.url, name="serve-pg"),
                                 port, workdir / "serve-pg.log")
        db = Database(url)
        try:
            report.info(f"safebot serve up in {await service.start():.1f} s "
                        f"(pid {service.pid}) on {url.rsplit('@', 1)[-1]}")
            await _load_through_restart(report, db, service, wecom, postgres, plan)
        finally:
            service.stop()
            db.close()
            wecom.stop()
    return report


async def _load_through_restart(report: Report, db: Database, service: ServiceProcess,
                                wecom, postgres, plan: RestartPlan) -> None:
    pid, health, stop = service.pid, HealthLog(), asyncio.Event()
    watcher = asyncio.create_task(health.watch(service, stop))
    started = time.monotonic()
    end_at = started + plan.before_s + plan.after_s + 30
    async with CallbackClient(service.callback_url) as client:
        senders = [asyncio.create_task(_keep_reporting(client, user, f"P{i}", end_at,
                                                       stop)) for i, user in
                   enumerate(plan.senders)]
        await asyncio.sleep(plan.before_s)
        restart_began = time.monotonic()
        away = await asyncio.to_thread(postgres.restart, plan.down_s)
        back = time.monotonic()
        how = (f"stop -m fast, {plan.down_s:.0f} s down, start" if plan.down_s > 0 else
               "restart -m fast")
        report.info(f"PostgreSQL restarted {restart_began - started:.1f} s into the load "
                    f"({how}: away {away:.1f} s)")
        await asyncio.sleep(plan.after_s)
        stop.set()
        dialogues = [d for got in await asyncio.gather(*senders) for d in got]
        majors = await major_reports(client, 2, "PGR" + os.urandom(2).hex())
    await watcher
    _check_restart(report, db, service, pid, health, dialogues,
                   (restart_began, back), plan)
    drained = await until(lambda: _drained_major(db), 60, 0.3)
    rows = [r for r in outbox_rows(db) if r.key.startswith("major:")]
    per_row = deliveries(rows, await _settled_pushes(wecom))
    once = [r for r in rows if sum(p.delivered for p in per_row[r.id]) == 1]
    report.check("the outbox sender works again: alerts of major hazards reported after the "
                 "restart were each delivered once", drained and bool(rows)
                 and len(once) == len(rows) and all(d.number for d in majors),
                 f"{len(once)} of {len(rows)} alert cards")


async def _keep_reporting(client: CallbackClient, user: str, prefix: str, end_at: float,
                          stop: asyncio.Event) -> list[Dialogue]:
    """Report hazard after hazard until ``stop``; the dialogue under way is finished."""
    dialogues: list[Dialogue] = []
    while not stop.is_set():
        n = len(dialogues) + 1
        dialogues.append(await report_hazard(client, user, f"{prefix}-{n}", n, end_at))
    return dialogues


def _check_restart(report: Report, db: Database, service: ServiceProcess, pid: int | None,
                   health: HealthLog, dialogues: list[Dialogue],
                   restart: tuple[float, float], plan: RestartPlan) -> None:
    began, back = restart
    exchanges = [ex for d in dialogues for ex in d.exchanges]
    report.info(f"{len(plan.senders)} users sent {len(exchanges)} messages in "
                f"{len(dialogues)} 上报 dialogues; /healthz during the restart: "
                f"{health.worst_between(began, back + 2)}")
    report.check("the service was not restarted (same process, still running)",
                 service.alive() and service.pid == pid, f"pid {pid}")
    ok_at = health.first_ok_after(back)
    report.check("/healthz is healthy again by itself",
                 ok_at is not None and ok_at - back <= plan.recover_within_s,
                 "never" if ok_at is None else f"{ok_at - back:.1f} s after PostgreSQL was back")
    normal_after = _first_normal_after(dialogues, back)
    report.check("callbacks are answered normally again by themselves",
                 normal_after is not None,
                 "never" if normal_after is None else
                 f"first normal reply {normal_after - back:.1f} s after PostgreSQL was back")
    _check_messages(report, db, exchanges)
    _check_hazards(report, db, dialogues)


def _first_normal_after(dialogues: list[Dialogue], moment: float) -> float | None:
    times = [ex.answered_at for d in dialogues for ex in d.exchanges
             if ex.answered_at and ex.answered_at >= moment and ex.reply
             and not ex.error_reply]
    return min(times, default=None)


def _check_messages(report: Report, db: Database, exchanges: list[Exchange]) -> None:
    unanswered = [ex for ex in exchanges if not ex.answered]
    report.check("every message was answered 200 (at the latest on a WeCom retry)",
                 not unanswered, f"{len(unanswered)} given up after "
                 f"{1 + 3} deliveries" if unanswered else
                 f"{sum(len(ex.tries) > 1 for ex in exchanges)} needed a retry")
    bad_empty = [ex for ex in exchanges if ex.empty and ex.tries[0].startswith("200")]
    report.check("only re-deliveries are answered as duplicates",
                 not bad_empty, f"{len(bad_empty)} first deliveries answered empty")
    keys = [ex.dedupe_key for ex in exchanges]
    recorded = dedupe_keys(db, keys)
    normal = [ex for ex in exchanges if ex.reply and not ex.error_reply]
    missing = [ex for ex in normal if ex.dedupe_key not in recorded]
    report.check("no message answered 200 was dropped silently: each answered normally "
                 "has its dedupe row", not missing and len(keys) == len(set(keys)),
                 f"{len(normal) - len(missing)} of {len(normal)}; the others got the error reply")
    errors = [ex for ex in exchanges if ex.error_reply]
    with_row = sum(ex.dedupe_key in recorded for ex in errors)
    report.info(f"{len(errors)} messages were answered 200 with the error reply while "
                f"PostgreSQL was away ({with_row} had their dedupe row, "
                f"{len(errors) - with_row} not).\nWeCom does not re-deliver a 200: the user "
                "reads 「请稍后再试」 and sends it again (the senders here do, as a new "
                "message);\nthe service does not retry them by itself.")


def _check_hazards(report: Report, db: Database, dialogues: list[Dialogue]) -> None:
    filed = {d.tag: hazards_tagged(db, d.tag) for d in dialogues}
    twice = [tag for tag, found in filed.items() if len(found) > 1]
    report.check("no hazard filed twice", not twice, ", ".join(twice))
    finished = [d for d in dialogues if d.ended in ("reported", "reply lost")]
    lost = [d.tag for d in finished if len(filed[d.tag]) != 1
            or (d.number and filed[d.tag][0]["number"] != d.number)]
    report.check("every 上报 confirmed by its user exists (nothing lost)",
                 bool(finished) and not lost,
                 f"{len(finished) - len(lost)} of {len(finished)} dialogues"
                 + (f"; missing: {', '.join(lost)}" if lost else ""))
    odd = Counter(d.ended for d in dialogues if d.ended not in ("reported",))
    if odd:
        report.info("dialogues that did not end with a number: "
                    + "; ".join(f"{k}: {v}" for k, v in odd.items()))


# --- running ---------------------------------------------------------------------------------

SCENARIOS = ("kill-dispatch", "kill-conversation", "pg-restart")


@contextmanager
def backend_database(backend: str, pg_url: str, workdir: Path) -> Iterator[str]:
    """A migrated, seeded database of the scenario's own."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'safebot.db'}"
        prepare_database(url)
        yield url
        return
    with scratch_postgres(pg_url) as url:
        prepare_database(url)
        yield url


async def run_kill_scenario(name: str, backend: str, args: argparse.Namespace) -> Report:
    report = Report(f"{name} on {backend}")
    workdir = Path(tempfile.mkdtemp(prefix=f"safebot-faults-{name}-"))
    wecom = FakeWeComProcess(workdir / "wecom.log")
    try:
        await wecom.start()
        with backend_database(backend, args.pg_url, workdir) as url:
            if name == "kill-dispatch":
                plan = DispatchPlan(bulk=args.bulk, members=args.members,
                                    reports=args.reports, lease_s=args.lease_s)
                await kill_dispatch(url, wecom, workdir, plan, report)
            else:
                await kill_conversation(url, wecom, workdir,
                                        ConversationPlan(lease_s=args.lease_s), report)
    except Exception as exc:  # a scenario that cannot run is a failure, with its reason
        report.check("the scenario ran to the end", False, f"{type(exc).__name__}: {exc}")
    finally:
        wecom.stop()
        _cleanup(workdir, report, args.keep)
    return report


async def run_pg_restart(args: argparse.Namespace) -> Report:
    report = Report("pg-restart on PostgreSQL"
                    + (" (the shared cluster)" if args.restart_shared else
                       " (a private cluster)"))
    workdir = Path(tempfile.mkdtemp(prefix="safebot-faults-pg-"))
    postgres = SharedPostgres(args.pg_url) if args.restart_shared else PrivatePostgres()
    try:
        await asyncio.to_thread(postgres.start)
        plan = RestartPlan(before_s=args.before, after_s=args.after, down_s=args.pg_down_s)
        await pg_restart(postgres, workdir, plan, report)
    except Exception as exc:
        report.check("the scenario ran to the end", False, f"{type(exc).__name__}: {exc}")
    finally:
        postgres.stop()
        _cleanup(workdir, report, args.keep)
    return report


def _cleanup(workdir: Path, report: Report, keep: bool) -> None:
    if keep or report.failed:
        report.info(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faults_process",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"any of {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--pg-url", default=DEFAULT_PG,
                   help="PostgreSQL for kill-* (a scratch database beside it) and for "
                        f"--restart-shared (default {DEFAULT_PG})")
    p.add_argument("--backends", default="sqlite,postgres",
                   help="for kill-*: sqlite, postgres or both (default)")
    p.add_argument("--lease-s", type=float, default=None,
                   help="kill-*: run the service with this outbox lease instead of the real "
                        "60 s (python -m bench.harness serve); faster, patched")
    p.add_argument("--bulk", type=int, default=1500, help="kill-dispatch: pushes queued")
    p.add_argument("--members", type=int, default=100, help="kill-dispatch: to this many")
    p.add_argument("--reports", type=int, default=6,
                   help="kill-dispatch: major hazards reported meanwhile")
    p.add_argument("--before", type=float, default=4.0, help="pg-restart: load before, s")
    p.add_argument("--after", type=float, default=10.0, help="pg-restart: load after, s")
    p.add_argument("--pg-down-s", type=float, default=0.0,
                   help="pg-restart: keep PostgreSQL stopped this long instead of a plain "
                        "restart (default 0)")
    p.add_argument("--restart-shared", action="store_true",
                   help="pg-restart: restart the machine's cluster (pg_ctlcluster) instead "
                        "of a private one; disturbs everyone using it")
    p.add_argument("--keep", action="store_true", help="keep the logs and temporary files")
    args = p.parse_args(argv)
    args.scenarios = args.scenarios or list(SCENARIOS)
    if not set(args.scenarios) <= set(SCENARIOS):
        p.error(f"scenarios: {', '.join(SCENARIOS)}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(args.backends) <= {"sqlite", "postgres"}:
        p.error("--backends: sqlite and/or postgres")
    if args.bulk > 29 * args.members:
        p.error("--bulk may be at most 29 x --members (WeCom's 30 a minute per member)")
    return args


async def run(args: argparse.Namespace) -> list[Report]:
    reports = []
    for name in args.scenarios:
        if name == "pg-restart":
            reports.append(await run_pg_restart(args))
            continue
        for backend in args.backends:
            reports.append(await run_kill_scenario(name, backend, args))
    return reports


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (a busy machine "
          "makes timings longer, never checks weaker)")
    reports = asyncio.run(run(args))
    failed = sum(r.failed for r in reports)
    print(f"\n{sum(r.passed for r in reports)} checks passed, {failed} failed"
          + (": " + "; ".join(f for r in reports for f in r.failures) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
