"""Growth (issue 8, part 6): a generated district of 2,000 units and 1,000,000 hazards.

    python -m bench.growth --db postgresql://postgres@127.0.0.1:5432/test \
        [--units 2000] [--hazards 1000000] [--runs 5] [--keep] [--reuse] [--explain]
    python -m bench.growth --db sqlite:////tmp/growth.db --units 200 --hazards 100000

The goals: the district's ledger (台账, 逾期) and statistics (统计) answer within 300 ms, a
school's ledger too; the XLSX export of 100,000 rows within 30 s; a full reminder sweep
within 5 s.

PostgreSQL: the URL names a server and a database to connect to first; the benchmark creates
its own database ``safebot_growth`` next to it (dropped at the end unless ``--keep``; the named
database's tables are never touched), runs the migrations, and fills it with PostgreSQL COPY.
SQLite: the file is deleted and recreated (kept with ``--keep``). ``--reuse`` skips the
generation and measures an existing, kept database again (after running the migrations, so new
indexes get built).

The district (seeded, reproducible): one bureau, ~30 township central schools, the rest schools
and kindergartens (60/40) spread over the townships; people in every role in each unit (组长,
副组长, 联络员, 值班人员 ×2; the bureau's 局长, safety officers and admin), a few unbound; hazards
over three years up to "today" (2026-06-29, a Monday; the sweep moments are 09:00 and 21:30 of
that day), weighted to school days and working hours, numbered per year, with their events; most
closed, the recent ones still being worked on, a tail of old ones long overdue, ~2% major; the
self-check runs (every two weeks or so), inspections (the half-month quotas, mostly kept) and
township supervision visits of the three years; duty shifts of the last year and the coming
week (白班 + 夜班 on working days, 24小时 with a leader otherwise; a few units with gaps); the
monthly updates of the last 12 months; one campaign whose deliverables fall due around today;
a spot-check plan.

What is timed is what the user waits for: the handler's database work (``db.call`` of the
same function, one transaction) plus rendering the reply's template. Each measurement runs
once untimed-as-warm-up ("first") and then ``--runs`` times; medians and p95 are printed.
The sweeps: first the first-ever catch-up of the day before (everything accumulated over three
years is escalated at once; reported, not a goal), then on the day itself the 09:00 and the
21:30 sweep, each twice (the first run queues, the second finds nothing new), ``--sweep-runs``
times with what they wrote removed in between.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.config import MonthlyConfig, RemindersConfig
from bot.db import Database, engine_url, optimize
from bot.ledger_xlsx import write_ledger
from bot.render import Renderer
from bot.workcal import load_calendar
from handlers.hazard_view import open_hazards
from models.checklist import load_checklists
from models.ledger import ledger_rows
from models.migrate import upgrade
from models.scope_report import report
from reminders import SWEEPS
from reminders.pusher import Pusher
from reminders.sweep import Sweeper

TZ = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
TODAY = date(2026, 6, 29)  # a Monday: the weekly digest, the inspection quota warnings
MORNING = datetime.combine(TODAY, dtime(9, 0), TZ).astimezone(UTC)
EVENING = datetime.combine(TODAY, dtime(21, 30), TZ).astimezone(UTC)
YEARS = 3
GROWTH_DB = "safebot_growth"
QUIET = "22:00-07:00"
SHIFT_DAYS = 365  # duty rosters: the last year of shifts
GOALS = {"a": 0.3, "b": 0.3, "c": 0.3, "d": 0.3, "e": 30.0, "f": 5.0}

AREAS = {  # key: (weight, descriptions, measures)
    "fire": (22, ["消防通道堵塞，杂物堆放", "灭火器过期未更换", "安全出口指示灯不亮",
                  "消火栓箱被遮挡", "配电箱周边堆放可燃物"], "清理杂物，更换过期器材，张贴标识"),
    "buildings": (14, ["教学楼外墙瓷砖松动", "宿舍楼梯扶手松动", "吊顶局部脱落",
                       "围墙出现裂缝"], "设置警戒区域，请专业单位维修加固"),
    "security": (12, ["校门口监控摄像头损坏", "门卫登记制度未落实", "一键报警装置失灵",
                      "护校岗人员不足"], "维修设备，落实门卫登记和护校岗"),
    "food": (10, ["食堂留样记录不全", "从业人员健康证过期", "冷库温度记录缺失",
                  "食材进货查验台账不全"], "完善台账，补办健康证，专人负责"),
    "crowds": (8, ["楼梯间照明不足", "放学时段楼梯拥挤无人疏导", "礼堂疏散通道狭窄"],
               "增加照明，安排教师疏导，调整放学时间"),
    "traffic": (7, ["校门口无减速带", "接送车辆乱停放", "交通标志牌缺失"],
                "联系交警部门增设设施，安排护学岗"),
    "flood": (6, ["操场排水沟堵塞", "地下室有渗水", "挡土墙排水孔堵塞"], "疏通排水，巡查值守"),
    "chemicals": (5, ["实验室危化品未双人双锁", "药品柜通风不良", "危化品台账不全"],
                  "落实双人双锁，完善台账"),
    "construction": (5, ["在建工地围挡不严", "施工区域与教学区未隔离", "脚手架无防护网"],
                     "完善围挡隔离，督促施工单位整改"),
    "special_equipment": (4, ["电梯年检过期", "锅炉压力表未校验", "液化气瓶未固定"],
                          "联系检验机构检验，固定气瓶"),
    "epidemic": (4, ["晨午检记录不全", "因病缺勤追踪不及时"], "完善晨午检制度，专人追踪"),
    "school_bus": (3, ["校车随车照管员缺位", "校车安全带损坏"], "配齐照管员，维修安全带"),
}
LOCATIONS = ["教学楼一楼", "教学楼三楼东侧", "综合楼", "学生宿舍", "食堂后厨", "操场东侧",
             "校门口", "实验楼二楼", "配电房", "礼堂", "图书馆", "地下车库", "围墙北侧"]
DEPARTMENTS = ["总务处", "安全办", "后勤处", "保卫处", "教务处"]
FUNDS = ["无需资金", "500元", "2000元", "学校自筹", "申请专项资金"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯"

log = logging.getLogger("bench.growth")


# ---------------------------------------------------------------------------------------------
# Where the rows go: PostgreSQL COPY, or SQLite executemany


class Loader:
    """``load(table, columns, rows)``: rows are tuples of Python values in column order; JSON
    columns carry their JSON text."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = engine_url(url).startswith("postgresql")
        self.rows: Counter[str] = Counter()
        if self.postgres:
            import psycopg
            plain = make_url(engine_url(url)).set(drivername="postgresql")
            self.conn = psycopg.connect(plain.render_as_string(hide_password=False))
            # bulk load: no FK triggers per row (every row is generated consistent)
            self.conn.execute("SET session_replication_role = replica")
        else:
            import sqlite3
            self.conn = sqlite3.connect(make_url(url).database)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")

    def load(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
        n = 0
        if self.postgres:
            cols = ", ".join(f'"{c}"' for c in columns)
            with self.conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as cp:
                for row in rows:
                    cp.write_row(row)
                    n += 1
        else:
            marks = ", ".join("?" for _ in columns)
            sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'
            batch: list[tuple] = []
            for row in rows:
                batch.append(tuple(_sqlite_value(v) for v in row))
                if len(batch) >= 20_000:
                    self.conn.executemany(sql, batch)
                    n += len(batch)
                    batch.clear()
            if batch:
                self.conn.executemany(sql, batch)
                n += len(batch)
        self.rows[table] += n
        return n

    def finish(self, tables: Iterable[str]) -> None:
        self.conn.commit()
        if self.postgres:
            self.conn.execute("SET session_replication_role = DEFAULT")
            for table in tables:  # explicit ids were loaded: move the sequences past them
                self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM \"{table}\"), false)")
            self.conn.commit()
            self.conn.autocommit = True
            self.conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
        self.conn.close()


def _sqlite_value(v: Any) -> Any:
    """What SQLAlchemy stores on SQLite: UTC wall time with microseconds, ISO dates."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


# ---------------------------------------------------------------------------------------------
# The district


@dataclass
class People:
    leader: dict[int, int] = field(default_factory=dict)      # unit -> person id
    deputy: dict[int, int] = field(default_factory=dict)
    liaison: dict[int, int] = field(default_factory=dict)
    duty: dict[int, list[int]] = field(default_factory=dict)
    officers: list[int] = field(default_factory=list)         # the bureau's safety officers
    name: dict[int, str] = field(default_factory=dict)
    userid: dict[int, str | None] = field(default_factory=dict)


@dataclass
class District:
    bureau: int = 1
    townships: list[int] = field(default_factory=list)
    schools: list[int] = field(default_factory=list)           # schools and kindergartens
    parent: dict[int, int] = field(default_factory=dict)
    kind: dict[int, str] = field(default_factory=dict)
    people: People = field(default_factory=People)


def _name(rnd: random.Random) -> str:
    return rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))


def make_units(loader: Loader, n_units: int, rnd: random.Random) -> District:
    d = District()
    n_town = max(1, round(n_units / 66))
    rows = [(1, "JYJ", "示范区教育局", "bureau", None)]
    d.kind[1] = "bureau"
    for t in range(1, n_town + 1):
        uid = 1 + t
        rows.append((uid, f"T{t:02d}", f"第{t:02d}镇中心校", "township", 1))
        d.townships.append(uid)
        d.parent[uid], d.kind[uid] = 1, "township"
    per_town: Counter[int] = Counter()
    for i in range(n_units - 1 - n_town):
        uid = 2 + n_town + i
        town = d.townships[i % n_town]
        per_town[town] += 1
        k = per_town[town]
        kg = i % 5 in (1, 3)
        t = town - 1
        rows.append((uid, f"T{t:02d}-{k:03d}", f"第{t:02d}镇第{k:03d}{'幼儿园' if kg else '学校'}",
                     "kindergarten" if kg else "school", town))
        d.schools.append(uid)
        d.parent[uid], d.kind[uid] = town, "kindergarten" if kg else "school"
    loader.load("unit", ("id", "code", "name", "kind", "parent_id"), rows)
    return d


def make_people(loader: Loader, d: District, rnd: random.Random) -> None:
    p = d.people
    people, roles = [], []
    created = datetime(2023, 3, 1, tzinfo=UTC)

    def person(unit: int, title: str, unit_roles: list[str], bound: bool = True) -> int:
        pid = len(people) + 1
        name = _name(rnd)
        userid = f"u{pid:05d}" if bound else None
        people.append((pid, userid, name, title, f"0519-{8800000 + pid}", f"139{pid:08d}",
                       unit, created))
        for role in unit_roles:
            roles.append((len(roles) + 1, pid, role))
        p.name[pid], p.userid[pid] = name, userid
        return pid

    b = d.bureau
    p.leader[b] = person(b, "局长", ["leader"])
    p.deputy[b] = person(b, "副局长", ["deputy"])
    p.officers = [person(b, "安全科科长", ["safety_officer", "member"]),
                  person(b, "安全专员", ["safety_officer"])]
    p.liaison[b] = person(b, "办公室副主任", ["admin", "liaison"])
    for unit in d.townships:
        p.leader[unit] = person(unit, "中心校校长", ["leader"])
        p.deputy[unit] = person(unit, "副校长", ["deputy"])
        p.liaison[unit] = person(unit, "安全办干事", ["liaison", "safety_officer"])
        p.duty[unit] = [person(unit, "值班干事", ["duty"]) for _ in range(2)]
    for unit in d.schools:
        kg = d.kind[unit] == "kindergarten"
        p.leader[unit] = person(unit, "园长" if kg else "校长", ["leader"])
        p.deputy[unit] = person(unit, "副园长" if kg else "副校长", ["deputy"])
        p.liaison[unit] = person(unit, "安全办主任", ["liaison", "member"],
                                 bound=rnd.random() > 0.01)
        p.duty[unit] = [person(unit, "值班教师", ["duty"], bound=rnd.random() > 0.02)
                        for _ in range(2)]
    loader.load("person", ("id", "userid", "name", "title", "office_phone", "mobile",
                           "unit_id", "created_at"), people)
    loader.load("person_role", ("id", "person_id", "role"), roles)


# ---------------------------------------------------------------------------------------------
# Hazards and their events

HAZARD_COLUMNS = ("id", "number", "unit_id", "area", "description", "location", "level",
                  "status", "source", "reporter_id", "reported_at", "department",
                  "responsible", "responsible_userid", "measures", "funds", "deadline",
                  "contingency", "rectified_by", "rectified_at", "review_result", "closed_at",
                  "extension_deadline", "extension_reason", "extension_by")
EVENT_COLUMNS = ("id", "hazard_id", "at", "actor_id", "actor_name", "action", "detail")
CHUNK = 50_000


def school_day_weight(day: date) -> float:
    holiday = (day.month, day.day) >= (7, 15) and day.month <= 8 or \
        (day.month == 1 and day.day >= 20) or (day.month == 2 and day.day <= 20)
    return (1.0 if day.weekday() < 5 else 0.2) * (0.3 if holiday else 1.0)


def p_open(age: int, major: bool) -> float:
    """How likely a hazard reported ``age`` days ago is still open today."""
    if age < 30:
        p = 0.10 + 0.45 * (1 - age / 30)
    elif age < 180:
        p = 0.012
    else:
        p = 0.0012
    return min(1.0, p * (1.5 if major else 1.0))


def make_hazards(loader: Loader, d: District, n: int, rnd: random.Random) -> dict[str, int]:
    first_day = TODAY - timedelta(days=365 * YEARS)
    days = [first_day + timedelta(days=i) for i in range((TODAY - first_day).days)]
    day_w = [school_day_weight(x) for x in days]
    units = d.townships + d.schools
    unit_w = [0.4] * len(d.townships) + [rnd.lognormvariate(0, 0.6) for _ in d.schools]
    picked_days = rnd.choices(range(len(days)), weights=day_w, k=n)
    picked_secs = [rnd.randrange(7 * 3600 + 1800, 17 * 3600 + 1800) for _ in range(n)]
    order = sorted(range(n), key=lambda i: (picked_days[i], picked_secs[i]))
    picked_units = rnd.choices(units, weights=unit_w, k=n)
    area_keys = list(AREAS)
    picked_areas = rnd.choices(area_keys, weights=[AREAS[a][0] for a in area_keys], k=n)
    midnight = {i: datetime.combine(x, dtime(), TZ) for i, x in enumerate(days)}
    now = MORNING
    p = d.people
    seq: Counter[int] = Counter()
    stats: Counter[str] = Counter()
    event_id = 0

    def chunks() -> Iterator[tuple[list[tuple], list[tuple]]]:
        nonlocal event_id
        hazards: list[tuple] = []
        events: list[tuple] = []
        for hid, i in enumerate(order, start=1):
            day_i = picked_days[i]
            local = midnight[day_i] + timedelta(seconds=picked_secs[i])
            reported = local.astimezone(UTC)
            year = local.year
            seq[year] += 1
            unit = picked_units[i]
            area = picked_areas[i]
            major = rnd.random() < 0.02
            level = "major" if major else "general"
            age = (TODAY - days[day_i]).days
            source = rnd.choices(("self", "self_check", "supervisor"), (55, 25, 20))[0]
            if source == "supervisor":
                reporter = p.liaison[d.parent.get(unit, unit)]  # the township (or bureau)
            else:
                r = rnd.random()
                reporter = (p.liaison[unit] if r < 0.6 else p.duty[unit][0] if r < 0.85
                            else p.deputy[unit])
            weight, texts, measures_text = AREAS[area]
            description = f"{rnd.choice(texts)}（{rnd.choice(LOCATIONS)}）"
            location = rnd.choice(LOCATIONS)
            status = "closed"
            if rnd.random() < p_open(age, major):
                r = rnd.random()
                if age < 3:
                    status = "reported" if r < 0.45 else "planned" if r < 0.9 else "rectified"
                else:
                    status = "reported" if r < 0.08 else "planned" if r < 0.85 else "rectified"
            liaison = p.liaison[unit]
            principal = p.leader[unit]
            event_id += 1
            events.append((event_id, hid, reported, reporter, p.name[reporter], "reported",
                           json.dumps({"level": level, "source": source, "photos": 1})))
            plan = status != "reported"
            department = responsible = measures = funds = contingency = ""
            responsible_userid = deadline = rectified_by = rectified_at = closed_at = None
            review = ""
            ext_deadline, ext_reason, ext_by = None, "", None
            if plan:
                available = (now - reported).total_seconds()
                planned_at = reported + timedelta(seconds=min(rnd.uniform(600, 2 * 86400),
                                                              available * 0.3))
                span = rnd.choice((15, 30, 45, 60)) if major else \
                    rnd.choice((3, 5, 7, 7, 10, 14, 14, 21, 30))
                deadline = planned_at.astimezone(TZ).date() + timedelta(days=span)
                department = rnd.choice(DEPARTMENTS)
                responsible = p.name[liaison]
                responsible_userid = p.userid[liaison] if rnd.random() < 0.5 else None
                measures, funds = measures_text, rnd.choice(FUNDS)
                contingency = "设置警示标志，专人看护"
                event_id += 1
                events.append((event_id, hid, planned_at, liaison, p.name[liaison], "planned",
                               json.dumps({"deadline": deadline.isoformat(),
                                           "responsible": responsible,
                                           "department": department})))
                if status in ("rectified", "closed"):
                    left = (now - planned_at).total_seconds()
                    rectified_at = planned_at + timedelta(
                        seconds=min(rnd.uniform(0.3, span * 1.15) * 86400, left * 0.7))
                    rectified_by = liaison
                    event_id += 1
                    events.append((event_id, hid, rectified_at, liaison, p.name[liaison],
                                   "rectified", '{"photos": 1}'))
                if status == "closed":
                    left = (now - rectified_at).total_seconds()
                    closed_at = rectified_at + timedelta(
                        seconds=min(rnd.uniform(0.1, 3) * 86400, left * 0.9))
                    review = "通过"
                    event_id += 1
                    events.append((event_id, hid, closed_at, principal, p.name[principal],
                                   "review_passed", '{"reason": ""}'))
                if status == "planned" and rnd.random() < 0.04:
                    ext_deadline = max(deadline, TODAY) + timedelta(days=rnd.choice((7, 14, 30)))
                    ext_reason, ext_by = "需要申请资金，工期较长", liaison
                    event_id += 1
                    events.append((event_id, hid, now - timedelta(days=1), liaison,
                                   p.name[liaison], "extension_requested",
                                   json.dumps({"deadline": ext_deadline.isoformat(),
                                               "reason": ext_reason})))
            stats[status] += 1
            stats["major"] += major
            if status in ("reported", "planned") and deadline is not None and deadline < TODAY:
                stats["overdue"] += 1
            if status == "planned" and deadline is not None and \
                    TODAY <= deadline <= TODAY + timedelta(days=2):
                stats["due_soon"] += 1
            hazards.append((hid, f"YH{year}-{seq[year]:06d}", unit, area, description, location,
                            level, status, source, reporter, reported, department, responsible,
                            responsible_userid, measures, funds, deadline, contingency,
                            rectified_by, rectified_at, review, closed_at, ext_deadline,
                            ext_reason, ext_by))
            if len(hazards) >= CHUNK:
                yield hazards, events
                hazards, events = [], []
        if hazards:
            yield hazards, events

    for hazards, events in chunks():
        loader.load("hazard", HAZARD_COLUMNS, hazards)
        loader.load("hazard_event", EVENT_COLUMNS, events)
    loader.load("hazard_counter", ("year", "last"), sorted(seq.items()))
    stats["events"] = event_id
    return dict(stats)


# ---------------------------------------------------------------------------------------------
# Self-checks, inspections, duty, monthly updates, a campaign


def make_routine(loader: Loader, d: District, rnd: random.Random) -> None:
    p = d.people
    first_day = TODAY - timedelta(days=365 * YEARS)
    area_keys = list(AREAS)

    def at(day: date, lo: float = 8, hi: float = 17) -> datetime:
        return datetime.combine(day, dtime(), TZ).astimezone(UTC) + timedelta(
            hours=rnd.uniform(lo, hi))

    def runs() -> Iterator[tuple]:
        rid = 0
        for unit in d.schools:
            day = first_day + timedelta(days=rnd.randrange(14))
            while day < TODAY:
                rid += 1
                started = at(day)
                r = rnd.random()
                status = "finished" if r < 0.9 else "abandoned"
                finished = started + timedelta(minutes=rnd.uniform(5, 60))
                yield (rid, unit, p.liaison[unit], rnd.choice(area_keys), started,
                       finished if status == "finished" else None, status)
                day += timedelta(days=rnd.randrange(10, 19))
    loader.load("selfcheck_run", ("id", "unit_id", "person_id", "area", "started_at",
                                  "finished_at", "status"), runs())

    def inspections() -> Iterator[tuple]:
        iid = 0
        start = first_day.replace(day=1)
        halves: list[tuple[date, date]] = []
        while start <= TODAY:
            mid = start.replace(day=15)
            nxt = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
            halves += [(start, mid), (mid + timedelta(days=1), nxt - timedelta(days=1))]
            start = nxt
        for a, b in halves:
            if b < first_day or a > TODAY:
                continue
            last = min(b, TODAY - timedelta(days=1))
            share = ((last - a).days + 1) / ((b - a).days + 1)  # the period under way: so far
            span = (last - a).days + 1
            for unit in d.schools:
                for person, quota, keep in ((p.leader[unit], 1, 0.85), (p.deputy[unit], 2, 0.75)):
                    done = quota if rnd.random() < keep * share else rnd.randrange(quota)
                    for _ in range(done):
                        iid += 1
                        yield (iid, unit, person, "inspection", True, "带队检查校园安全",
                               at(a + timedelta(days=rnd.randrange(span))), "[]")
                if rnd.random() < 0.5 * share:
                    iid += 1
                    yield (iid, unit, p.liaison[d.parent[unit]], "supervision",
                           rnd.random() < 0.7, "督查安全工作",
                           at(a + timedelta(days=rnd.randrange(span))), "[]")
    loader.load("inspection", ("id", "unit_id", "person_id", "kind", "announced", "content",
                               "at", "photo_ids"), inspections())


def make_duty(loader: Loader, d: District, rnd: random.Random) -> None:
    from models.duty import slot_times
    calendar = load_calendar()
    p = d.people
    gaps = set(rnd.sample(d.schools, max(1, len(d.schools) // 20)))  # no roster next week

    def shifts() -> Iterator[tuple]:
        sid = 0
        for offset in range(-SHIFT_DAYS, 8):
            day = TODAY + timedelta(days=offset)
            kinds = ("day", "night") if calendar.is_workday(day) else ("24h",)
            for unit in d.townships + d.schools:
                if offset > 0 and unit in gaps:
                    continue
                for k, kind in enumerate(kinds):
                    sid += 1
                    start, end = slot_times(day, kind, TZ)
                    person = p.duty[unit][(offset + k) % 2]
                    leader = (p.leader[unit] if offset % 2 else p.deputy[unit]) \
                        if kind == "24h" or rnd.random() < 0.3 else None
                    checked = closed = None
                    if end <= MORNING:  # over: nearly always checked in, mostly closed
                        ok = rnd.random() < 0.96
                    elif start <= MORNING:  # today's 白班, begun at 08:00
                        ok = rnd.random() < 0.88
                    elif start <= EVENING:  # today's 夜班 (begins 18:00: the 21:30 sweep)
                        ok = rnd.random() < 0.9
                    else:
                        ok = False
                    if ok:
                        checked = start + timedelta(minutes=rnd.uniform(-20, 10))
                    if end <= MORNING and checked and rnd.random() < 0.9:
                        closed = end - timedelta(minutes=rnd.uniform(0, 30))
                    yield (sid, unit, day, kind, start, end, person, leader,
                           start - timedelta(days=7), checked, "校门口" if checked else "",
                           closed, "平安" if closed else "", "", 0)
    loader.load("duty_shift", ("id", "unit_id", "day", "kind", "start_at", "end_at",
                               "person_id", "leader_id", "assigned_at", "checked_in_at",
                               "checkin_location", "closed_at", "close_note", "handover_note",
                               "escalation"), shifts())
    leaves = [(i + 1, p.duty[u][0], TODAY + timedelta(days=1), TODAY + timedelta(days=5),
               MORNING - timedelta(days=3)) for i, u in enumerate(rnd.sample(d.schools, 20))]
    loader.load("duty_leave", ("id", "person_id", "start", "end", "created_at"), leaves)
    loader.load("duty_spot_plan", ("id", "unit_id", "per_day", "set_by", "set_at"),
                [(1, d.bureau, 4, p.officers[0], MORNING - timedelta(days=30))])


def make_monthly(loader: Loader, d: District, rnd: random.Random) -> None:
    p = d.people

    def updates() -> Iterator[tuple]:
        uid = 0
        month = TODAY.replace(day=1)
        for back in range(1, 13):
            month = (month - timedelta(days=1)).replace(day=1)
            key = f"{month.year:04d}-{month.month:02d}"
            due = (month + timedelta(days=40)).replace(day=5)
            for unit in d.townships + d.schools:
                if rnd.random() > 0.95:
                    continue  # not even a draft
                submitted = rnd.random() < 0.93
                late = submitted and rnd.random() < 0.08
                at = datetime.combine(due - timedelta(days=rnd.randrange(0, 4)) +
                                      timedelta(days=6 if late else 0), dtime(16), TZ)
                uid += 1
                yield (uid, unit, key, "submitted" if submitted else "draft", "{}", at, "{}",
                       "本月开展安全检查，隐患均已按期整改。", at - timedelta(days=2), at,
                       at if submitted else None, p.liaison[unit] if submitted else None,
                       late, back >= 2)
    loader.load("monthly_update", ("id", "unit_id", "month", "status", "computed",
                                   "computed_at", "corrections", "progress", "created_at",
                                   "updated_at", "submitted_at", "submitted_by", "late",
                                   "locked"), updates())


def make_campaign(loader: Loader, d: District, rnd: random.Random) -> None:
    p = d.people
    loaded = MORNING - timedelta(days=60)
    loader.load("campaign", ("id", "key", "name", "source", "units", "starts_on", "ends_on",
                             "loaded_at"),
                [(1, "growth-summer", "暑期安全专项行动", "示范区教育局通知", '["all"]',
                  TODAY - timedelta(days=59), TODAY + timedelta(days=90), loaded)])
    loader.load("campaign_phase", ("id", "campaign_id", "seq", "name", "starts_on", "ends_on",
                                   "summary"),
                [(1, 1, 1, "排查整治", TODAY - timedelta(days=59), TODAY + timedelta(days=90),
                  "全面排查")])
    dues = [(-7, 0.9), (-3, 0.75), (0, 0.5), (3, 0.3), (7, 0.1)]
    loader.load("campaign_deliverable", ("id", "campaign_id", "phase_id", "key", "series",
                                         "month", "name", "due", "note"),
                [(i + 1, 1, 1, f"item{i + 1}", f"item{i + 1}", 0, f"第{i + 1}次排查报告",
                  TODAY + timedelta(days=off), "报镇中心校") for i, (off, _) in enumerate(dues)])
    units = d.townships + d.schools

    def submissions() -> Iterator[tuple]:
        sid = 0
        for i, (off, share) in enumerate(dues):
            for unit in units:
                if rnd.random() < share:
                    sid += 1
                    yield (sid, i + 1, unit, p.liaison[unit],
                           MORNING + timedelta(days=min(off, 0) - 1), "已完成排查", "[]", 0)
    loader.load("campaign_submission", ("id", "deliverable_id", "unit_id", "person_id",
                                        "submitted_at", "text", "photo_ids", "files"),
                submissions())
    # a few slot changes not yet told (the duty sweep's third part)
    loader.load("duty_change", ("id", "shift_id", "person_id", "what", "created_at"),
                [(i + 1, 1 + i * 97, d.people.duty[d.schools[i]][0], "assigned",
                  MORNING - timedelta(days=2)) for i in range(min(50, len(d.schools)))])


TABLES = ("unit", "person", "person_role", "hazard", "hazard_event", "selfcheck_run",
          "inspection", "duty_shift", "duty_leave", "duty_spot_plan", "monthly_update",
          "campaign", "campaign_phase", "campaign_deliverable", "campaign_submission",
          "duty_change")


def generate(url: str, n_units: int, n_hazards: int, seed: int = 8) -> dict[str, Any]:
    rnd = random.Random(seed)
    loader = Loader(url)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    d = make_units(loader, n_units, rnd)
    make_people(loader, d, rnd)
    timings["org"] = time.perf_counter() - began
    t = time.perf_counter()
    hz = make_hazards(loader, d, n_hazards, rnd)
    timings["hazards"] = time.perf_counter() - t
    t = time.perf_counter()
    make_routine(loader, d, rnd)
    make_duty(loader, d, rnd)
    make_monthly(loader, d, rnd)
    make_campaign(loader, d, rnd)
    timings["rest"] = time.perf_counter() - t
    t = time.perf_counter()
    loader.finish(TABLES)
    timings["finish"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - began
    return {"rows": dict(loader.rows), "hazards": hz, "timings": timings}


# ---------------------------------------------------------------------------------------------
# Databases


def growth_url(url: str) -> str:
    if engine_url(url).startswith("postgresql"):
        return make_url(engine_url(url)).set(database=GROWTH_DB).render_as_string(
            hide_password=False)
    return url


def create_database(url: str) -> None:
    if engine_url(url).startswith("postgresql"):
        admin = create_engine(make_url(engine_url(url)), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{GROWTH_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{GROWTH_DB}"'))
        admin.dispose()
    else:
        path = Path(make_url(url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def drop_database(url: str) -> None:
    if engine_url(url).startswith("postgresql"):
        admin = create_engine(make_url(engine_url(url)), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{GROWTH_DB}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = Path(make_url(url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Measuring


class Statements:
    """Every statement the engine runs while ``capture`` is on: SQL, parameters, seconds."""

    def __init__(self, engine) -> None:
        self.engine, self.on, self.seen = engine, False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            conn.info.setdefault("growth_t", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on and conn.info.get("growth_t"):
            began = conn.info["growth_t"].pop()
            self.seen.append((statement, parameters, time.perf_counter() - began))

    @contextmanager
    def capture(self) -> Iterator[list]:
        self.seen, self.on = [], True
        try:
            yield self.seen
        finally:
            self.on = False

    def explain(self, statement: str, parameters: Any) -> list[str]:
        prefix = ("EXPLAIN (ANALYZE, BUFFERS) " if self.engine.dialect.name == "postgresql"
                  else "EXPLAIN QUERY PLAN ")
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            conn.rollback()
        if self.engine.dialect.name == "postgresql":
            return [_short_ids(r[0]) for r in rows]
        return [" | ".join(str(c) for c in r) for r in rows]


IDS = re.compile(r"\d+(?:, ?\d+){9,}")


def _short_ids(text_: str) -> str:
    """A plan's 2,000 unit ids written out, as ``<2000 ids>``."""
    return IDS.sub(lambda m: f"<{m.group(0).count(',') + 1} ids>", text_)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Result:
    key: str
    label: str
    goal: float | None
    first: float
    times: list[float]
    note: str = ""
    statements: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


class Bench:
    def __init__(self, url: str, runs: int, sweep_runs: int, explain: bool,
                 export_rows: int, workdir: Path) -> None:
        self.db = Database(url)
        self.statements = Statements(self.db.engine)
        self.runs, self.sweep_runs, self.explain = runs, sweep_runs, explain
        self.export_rows, self.workdir = export_rows, workdir
        self.renderer = Renderer(TZ)
        self.areas = {c.key: c.name for c in load_checklists().all()}
        self.calendar = load_calendar()
        self.results: list[Result] = []
        self.notes: list[str] = []

    # -- the pieces a user waits for ------------------------------------------------------
    def ledger(self, unit_id: int, unit: str, overdue: bool) -> str:
        rows = self.db.call(open_hazards, unit_id=unit_id,
                            overdue_on=TODAY if overdue else None)
        return self.renderer.render("hazard/ledger.txt.j2", rows=rows, unit=unit, today=TODAY,
                                    overdue=overdue)

    def stats(self, unit_id: int, start: date, end: date) -> str:
        data = self.db.call(report, unit_id=unit_id, start=start, end=end, today=TODAY, tz=TZ,
                            areas=self.areas)
        return self.renderer.render("stats/summary.txt.j2", **data)

    def export(self, unit_id: int, start: date, end: date) -> int:
        sheets = self.db.call(ledger_rows, unit_id=unit_id, start=start, end=end, tz=TZ,
                              today=TODAY, area_names=self.areas)
        out = self.workdir / "ledger.xlsx"
        write_ledger(out, sheets, title="示范区教育局", period=(start, end))
        return sum(len(r) for r in sheets.values())

    def time(self, key: str, label: str, fn: Callable[[], Any], runs: int | None = None,
             warm: bool = True, note: Any = "") -> Result:
        runs = self.runs if runs is None else runs
        with self.statements.capture() as seen:
            began = time.perf_counter()
            out = fn()
            first = time.perf_counter() - began
        captured = list(seen)
        times = [] if warm else [first]
        while len(times) < runs:
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
        result = Result(key, label, GOALS.get(key[0]), first, times,
                        note=note(out) if callable(note) else note, statements=len(captured))
        self.results.append(result)
        print(f"  {label}: first {fmt(first)}, median {fmt(result.median)}, "
              f"p95 {fmt(p95(times))}, {len(captured)} statements {result.note}", flush=True)
        if self.explain:
            self.show_plans(captured)
        return result

    def show_plans(self, captured: list, top: int = 2) -> None:
        slow = sorted(captured, key=lambda s: -s[2])[:top]
        for statement, parameters, seconds in slow:
            if seconds < 0.005 or not statement.lstrip().upper().startswith("SELECT"):
                continue
            flat = _short_ids(" ".join(statement.split()))
            print(f"    -- {seconds * 1000:.1f} ms: {flat[:300]}{'…' if len(flat) > 300 else ''}")
            try:
                for line in self.statements.explain(statement, parameters):
                    print(f"       {line}")
            except Exception as exc:  # noqa: BLE001 - a plan we cannot show is not fatal
                print(f"       (no plan: {exc})")

    # -- the scenario ---------------------------------------------------------------------
    def ids(self) -> dict[str, Any]:
        with self.db.engine.connect() as conn:
            bureau = conn.execute(text("SELECT id, name FROM unit WHERE kind = 'bureau'")).one()
            town = conn.execute(text(
                "SELECT u.id, u.name, count(*) AS n FROM unit u JOIN unit s ON s.parent_id = u.id "
                "WHERE u.kind = 'township' GROUP BY u.id, u.name ORDER BY n DESC, u.id")).first()
            school = conn.execute(text(
                "SELECT u.id, u.name, count(*) AS n FROM hazard h JOIN unit u ON u.id = h.unit_id "
                "WHERE u.kind = 'school' GROUP BY u.id, u.name ORDER BY n DESC, u.id")).first()
            counts = dict(conn.execute(text(
                "SELECT status, count(*) FROM hazard GROUP BY status")).all())
            units = conn.execute(text("SELECT count(*) FROM unit")).scalar_one()
            days = conn.execute(text(
                "SELECT reported_at FROM hazard ORDER BY reported_at DESC LIMIT 1 OFFSET :n"),
                {"n": max(0, self.export_rows - 1)}).scalar()
        if days is None:  # fewer hazards than asked for: the whole range
            start = TODAY - timedelta(days=365 * YEARS)
        else:
            if isinstance(days, str):
                days = datetime.fromisoformat(days).replace(tzinfo=UTC)
            start = days.astimezone(TZ).date() + timedelta(days=1)
        return {"bureau": tuple(bureau), "township": tuple(town[:2]), "school": tuple(school[:2]),
                "counts": counts, "units": units, "export": (start, TODAY - timedelta(days=1))}

    def queries(self) -> None:
        ids = self.ids()
        bureau, bname = ids["bureau"]
        town, tname = ids["township"]
        school, sname = ids["school"]
        print(f"\ndistrict: {ids['units']} units, hazards by status {ids['counts']}")
        if self.db.is_sqlite:
            # a running service's sweeper ends every pass with PRAGMA optimize (bot.db.optimize),
            # which analyzes what the planner used: do as its first pass would have done
            self.stats(bureau, TODAY.replace(day=1), TODAY)
            self.db.call(optimize)
            print("SQLite: PRAGMA optimize after one 统计, as the sweeper's first pass does")
        print("(a)-(d): query + rendering the reply; warm (after one untimed run: 'first')")
        self.time("a", "(a) 台账 district (bureau)", lambda: self.ledger(bureau, bname, False))
        self.time("b", "(b) 逾期 district (bureau)", lambda: self.ledger(bureau, bname, True))
        first_of_month = TODAY.replace(day=1)
        self.time("c", "(c) 统计 本月 district", lambda: self.stats(bureau, first_of_month, TODAY))
        self.time("d", f"(d) 台账 school {sname}", lambda: self.ledger(school, sname, False))
        self.time("d2", f"    逾期 school {sname}", lambda: self.ledger(school, sname, True))
        last_month = (first_of_month - timedelta(days=1)).replace(day=1)
        self.time("c2", "    统计 上月 district",
                  lambda: self.stats(bureau, last_month, first_of_month - timedelta(days=1)))
        self.time("c3", "    统计 今年 district",
                  lambda: self.stats(bureau, TODAY.replace(month=1, day=1), TODAY))
        self.time("c4", f"    统计 本月 township {tname}",
                  lambda: self.stats(town, first_of_month, TODAY))
        self.time("a2", f"    台账 township {tname}", lambda: self.ledger(town, tname, False))
        start, end = ids["export"]
        print(f"(e) export {start} .. {end} (district), cold: no warm-up run")
        self.time("e", "(e) 导出台账 XLSX", lambda: self.export(bureau, start, end), warm=False,
                  note=lambda n: f"({n} rows)")

    # -- the sweeps -----------------------------------------------------------------------
    def sweeper(self, moment: datetime, timings: dict[str, float]) -> Sweeper:
        def timed(name: str, fn):
            def run(ctx):
                began = time.perf_counter()
                try:
                    return fn(ctx)
                finally:
                    timings[name] = timings.get(name, 0) + time.perf_counter() - began
            return run
        pusher = Pusher(renderer=self.renderer, tz=TZ, quiet_hours=QUIET)
        return Sweeper(db=self.db, clock=FakeClock(moment), tz=TZ, calendar=self.calendar,
                       pusher=pusher, settings=RemindersConfig(), quiet_hours=QUIET,
                       areas=self.areas, sweeps=[(n, timed(n, f)) for n, f in SWEEPS],
                       monthly=MonthlyConfig())

    def sweep(self, moment: datetime) -> tuple[float, dict[str, int], dict[str, float], int]:
        timings: dict[str, float] = {}
        sweeper = self.sweeper(moment, timings)
        with self.statements.capture() as seen:
            began = time.perf_counter()
            counts = asyncio.run(sweeper.run_once())
            took = time.perf_counter() - began
        if any(v < 0 for v in counts.values()):
            self.notes.append(f"sweep at {moment}: failed sweeps {counts}")
        return took, counts, timings, len(seen)

    def reset(self, since: datetime | None) -> None:
        """Remove what sweeps wrote from ``since`` on (None: everything, back to generated)."""
        with self.db.engine.begin() as conn:
            if since is None:
                for table in ("outbox", "digest_item", "duty_spot_check"):
                    conn.execute(text(f'DELETE FROM "{table}"'))
                conn.execute(text("UPDATE duty_shift SET escalation = 0 WHERE escalation > 0"))
                conn.execute(text("UPDATE duty_change SET notified_at = NULL"))
            else:
                conn.execute(text("DELETE FROM outbox WHERE created_at >= :t"), {"t": since})
                conn.execute(text("DELETE FROM digest_item WHERE created_at >= :t"), {"t": since})
                conn.execute(text("UPDATE digest_item SET sent_at = NULL WHERE sent_at >= :t"),
                             {"t": since})
                conn.execute(text("DELETE FROM duty_spot_check WHERE asked_at >= :t"),
                             {"t": since})
                conn.execute(text("UPDATE duty_shift SET escalation = 0 WHERE day = :d"),
                             {"d": TODAY})
        if self.db.engine.dialect.name == "postgresql":
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE outbox, digest_item, duty_shift"))

    def sweeps(self) -> None:
        print("\n(f) reminder sweeps (all SWEEPS, Sweeper.run_once)")
        self.reset(None)
        before = MORNING - timedelta(days=1)
        for label, moment in (("first-ever catch-up, Sun 09:00", before),
                              ("Sun 21:30", before + (EVENING - MORNING))):
            for attempt in ("first", "second"):
                took, counts, timings, n = self.sweep(moment)
                self._print_sweep(f"  {label} ({attempt} run)", took, counts, timings, n)
                if attempt == "first":
                    self.results.append(Result("f0", f"    sweep {label} (once)", None,
                                               took, [took], statements=n))
                    print(f"    most messages queued for one person: {self.busiest()}")
        since = MORNING - timedelta(minutes=1)
        runs: dict[str, list[float]] = defaultdict(list)
        shown: dict[str, tuple] = {}
        for i in range(self.sweep_runs):
            if i:
                self.reset(since)
            for label, moment in (("Mon 09:00", MORNING), ("Mon 21:30", EVENING)):
                for attempt in ("first", "second"):
                    took, counts, timings, n = self.sweep(moment)
                    runs[f"{label} {attempt}"].append(took)
                    shown.setdefault(f"{label} {attempt}", (took, counts, timings, n))
        for name, (took, counts, timings, n) in shown.items():
            self._print_sweep(f"  {name} run (run 1 of {self.sweep_runs})", took, counts,
                              timings, n)
        for name, times in runs.items():
            main_run = name == "Mon 09:00 first"
            self.results.append(Result("f" if main_run else "f-" + name,
                                       f"{'(f)' if main_run else '   '} sweep {name} run",
                                       GOALS["f"], times[0], times, statements=shown[name][3]))

    def busiest(self, top: int = 3) -> str:
        """Who is flooded: the most pending messages queued for one recipient (escalations
        to many at once go as one list, reminders.pusher.Grouping)."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT recipient, count(*) AS n FROM outbox WHERE status = 'pending' "
                "GROUP BY recipient ORDER BY n DESC, recipient LIMIT :top"), {"top": top}).all()
        return ", ".join(f"{r} {n}" for r, n in rows) or "none"

    @staticmethod
    def _print_sweep(label: str, took: float, counts: dict, timings: dict, n: int) -> None:
        busy = ", ".join(f"{k} {timings.get(k, 0):.2f}s/{counts[k]}" for k in counts
                         if timings.get(k, 0) >= 0.05 or counts[k])
        queued = sum(max(v, 0) for v in counts.values())
        print(f"{label}: {took:.2f} s, {n} statements, queued {queued} — {busy}", flush=True)

    def table(self) -> None:
        print("\n| measure | goal | first | median | p95 | statements | met |")
        print("|---|---|---|---|---|---|---|")
        for r in self.results:
            goal = fmt(r.goal) if r.goal else "—"
            met = ("yes" if r.median <= r.goal else "**no**") if r.goal else ""
            print(f"| {r.label.strip()} {r.note} | {goal} | {fmt(r.first)} | {fmt(r.median)} | "
                  f"{fmt(p95(r.times))} | {r.statements} | {met} |")
        for note in self.notes:
            print(f"note: {note}")

    def close(self) -> None:
        self.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="postgresql://… (a server: the benchmark "
                        f"creates {GROWTH_DB} there) or sqlite:///file")
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--hazards", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sweep-runs", type=int, default=0, help="default: min(runs, 3)")
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN (ANALYZE) the slowest statements of each measurement")
    parser.add_argument("--only", default="", help="q (queries), s (sweeps); default both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    url = growth_url(args.db)
    keep = args.keep or args.reuse
    try:
        if not args.reuse:
            create_database(args.db)
        db = Database(url)
        upgrade(db.engine)
        db.close()
        if not args.reuse:
            print(f"generating {args.units} units, {args.hazards} hazards into "
                  f"{make_url(engine_url(url)).render_as_string()} …", flush=True)
            made = generate(url, args.units, args.hazards)
            print(f"generated in {made['timings']['total']:.1f} s "
                  f"({', '.join(f'{k} {v:.1f}s' for k, v in made['timings'].items())})")
            print("rows: " + ", ".join(f"{k} {v}" for k, v in made["rows"].items()))
            print("hazards: " + ", ".join(f"{k} {v}" for k, v in made["hazards"].items()))
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(url, args.runs, args.sweep_runs or min(args.runs, 3), args.explain,
                          args.export_rows, Path(tmp))
            try:
                if args.only in ("", "q"):
                    bench.queries()
                if args.only in ("", "s"):
                    bench.sweeps()
                bench.table()
            finally:
                bench.close()
    finally:
        if not keep:
            drop_database(args.db)


if __name__ == "__main__":
    main()
