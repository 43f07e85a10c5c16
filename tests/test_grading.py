"""Grading (分类分级): the rules on plain records, the facts collected from the database, the
spot-check proposal, and 分级 / 通报 through the door."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from models import monthly as mu
from models import outbox
from models.grading import Record, Window, grade, rank, spot_checks
from models.grading_facts import collect, default_window, window_for
from models.inspection import Inspection, Kind
from models.leader_monthly import Calendar
from models.org import Person
from models.selfcheck import RunStatus, SelfCheckRun
from tests.conftest import make_config
from tests.stats_fixtures import TODAY, TZ, add_hazard, local, seed_district, unit_id

WINDOW = Window(date(2026, 8, 1), date(2026, 10, 31))  # 92 days: 6 self-checks expected


def record(code="X", **facts):
    return Record(unit_id=hash(code) % 1000, unit=code, code=code, **facts)


def test_the_default_window_is_the_last_three_full_months():
    assert default_window(TODAY) == WINDOW and WINDOW.expected_selfchecks == 6
    assert window_for("上月", today=TODAY) == Window(date(2026, 10, 1), date(2026, 10, 31))
    assert window_for("本月", today=TODAY) == Window(date(2026, 11, 1), TODAY)
    assert window_for("本月", today=TODAY).expected_selfchecks == 1
    assert window_for("明年", today=TODAY) is None


def test_full_marks_on_every_criterion_is_an_a_without_reasons():
    g = grade(record(selfchecks=7, own_found=5, due=4, on_time=4, months_owed=3,
                     months_on_time=3), WINDOW)
    assert (g.score, g.grade, g.reasons, g.falls_short) == (100.0, "A", [], False)


def test_a_unit_with_nothing_to_report_and_nothing_due_loses_only_what_it_did_not_do():
    g = grade(record(selfchecks=6, months_owed=3, months_on_time=3), WINDOW)
    assert g.score == 100.0  # no hazards found, none due: nothing missed


def test_points_are_shares_of_25_and_each_shortfall_is_a_reason_with_its_numbers():
    g = grade(record(selfchecks=3, own_found=3, supervisor_found=1, due=4, on_time=3,
                     months_owed=3, months_on_time=3), WINDOW)
    assert g.points == {"selfchecks": 12.5, "self_report": 18.8, "on_time": 18.8,
                        "monthly": 25.0}
    assert (g.score, g.grade) == (75.1, "B")
    assert g.reasons == [
        {"criterion": "selfchecks", "points": 12.5, "runs": 3, "expected": 6},
        {"criterion": "self_report", "points": 18.8, "own": 3, "supervisor": 1},
        {"criterion": "on_time", "points": 18.8, "on_time": 3, "due": 4}]


@pytest.mark.parametrize("facts, score, letter, capped", [
    (dict(own_found=2, months_owed=2, months_on_time=2), 75.0, "C", True),   # no self-check
    (dict(selfchecks=6, due=2, months_owed=2, months_on_time=2), 75.0, "C", True),
    (dict(selfchecks=6, own_found=1, due=2, on_time=2, months_owed=2), 75.0, "C", True),
    (dict(selfchecks=5, own_found=1, due=2, on_time=2, months_owed=2, months_on_time=2),
     95.8, "A", False),
    (dict(selfchecks=2, own_found=1, supervisor_found=1, due=2, on_time=2, months_owed=2,
          months_on_time=2), 70.8, "C", False),
    (dict(selfchecks=2, own_found=1, supervisor_found=1, due=2, on_time=1, months_owed=2,
          months_on_time=2), 58.3, "D", False),
    (dict(months_owed=3), 50.0, "D", False),  # did nothing at all
    (dict(own_found=1, supervisor_found=3, due=4, months_owed=2, months_on_time=1), 18.7,
     "D", False),
])
def test_grade_bounds_and_a_zero_criterion_caps_the_grade_at_c(facts, score, letter, capped):
    g = grade(record(**facts), WINDOW)
    assert (g.score, g.grade, g.capped) == (score, letter, capped)
    assert g.falls_short is (letter == "D")


def test_spot_checks_go_to_the_lowest_not_visited_lately_plus_one_drawn_at_random():
    records = [record(f"U{i}", selfchecks=i, months_owed=1, months_on_time=1,
                      last_visit=date(2026, 11, 10) if i == 0 else
                      date(2026, 9, 1) if i == 2 else None) for i in range(8)]
    grades = rank(records, WINDOW)
    proposal = spot_checks(grades, today=TODAY, window=WINDOW)
    low = [p["grade"].record.code for p in proposal if p["why"] == "low"]
    drawn = [p["grade"].record.code for p in proposal if p["why"] == "random"]
    assert low == ["U1", "U2", "U3", "U4"]  # U0 is lowest but was visited ten days ago
    assert len(drawn) == 1 and drawn[0] in {"U5", "U6", "U7"}
    assert spot_checks(grades, today=TODAY, window=WINDOW) == proposal  # stable


def seed_work(*, session):
    """Aug–Oct 2026 beside the district of stats_fixtures: self-checks, visits, updates."""
    bureau = session.exec(select(Person.id).where(Person.userid == "demo-bureau")).one()
    for code, runs in (("CD-SY", 6), ("CD-YEY", 2), ("CX-ZX", 0)):
        uid = unit_id(session, code)
        person = session.exec(select(Person.id).where(Person.unit_id == uid)).first()
        for i in range(runs):
            session.add(SelfCheckRun(unit_id=uid, person_id=person, area="fire",
                                     started_at=local((9, 1 + i)), finished_at=local((9, 1 + i)),
                                     status=RunStatus.FINISHED))
    session.add(SelfCheckRun(unit_id=unit_id(session, "CX-ZX"), person_id=bureau, area="fire",
                             started_at=local((9, 3)), status=RunStatus.ABANDONED))
    add_hazard(session, code="CX-ZX", reported=local((10, 10)), source="supervisor")
    for code, day in (("CX-ZX", (11, 15)), ("CD-YEY", (9, 1))):
        session.add(Inspection(unit_id=unit_id(session, code), person_id=bureau,
                               kind=Kind.SUPERVISION, announced=False, content="暗访",
                               at=local(day), photo_ids=[]))
    for code, month, late in (("CD-SY", "2026-08", False), ("CD-SY", "2026-09", False),
                              ("CD-YEY", "2026-08", False), ("CD-YEY", "2026-09", True)):
        row = mu.get_or_create(session=session, unit_id=unit_id(session, code), month=month,
                               now=local((9, 1)))
        row.status, row.late = mu.UpdateStatus.SUBMITTED, late


def test_facts_are_collected_per_school_and_graded_by_the_rules(demo):
    demo.call(seed_district)
    demo.call(seed_work)
    records = demo.call(lambda session: collect(
        session=session, unit_id=unit_id(session, "JYJ"), window=WINDOW, today=TODAY, tz=TZ,
        cal=Calendar(5, 5)))
    facts = {r.code: (r.selfchecks, r.own_found, r.supervisor_found, r.due, r.on_time,
                      r.months_owed, r.months_on_time, r.last_visit) for r in records}
    assert facts == {  # July had no update anywhere yet: two months owed, not three
        "CD-SY": (6, 1, 0, 1, 0, 2, 2, None),
        "CD-YEY": (2, 1, 0, 1, 1, 2, 1, date(2026, 9, 1)),
        "CX-ZX": (0, 2, 1, 0, 0, 2, 0, date(2026, 11, 15)),
        "CX-YEY": (0, 0, 0, 0, 0, 2, 0, None)}
    grades = rank(records, WINDOW)
    assert [(g.record.code, g.score, g.grade) for g in grades] == [
        ("CX-ZX", 41.7, "D"), ("CX-YEY", 50.0, "D"), ("CD-YEY", 70.8, "C"),
        ("CD-SY", 75.0, "C")]
    proposal = spot_checks(grades, today=TODAY, window=WINDOW)
    assert [p["grade"].record.code for p in proposal] == ["CX-YEY", "CD-YEY", "CD-SY"]


# -- through the door ------------------------------------------------------------------------

@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=TZ))


@pytest.fixture
async def door(start_service, demo, database_url, fake_wecom):
    demo.call(seed_district)
    demo.call(seed_work)
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


async def test_the_bureau_sees_the_ranking_with_reasons_and_spot_checks(door):
    from tests.test_hazard_loop import say
    shown = await say(door, "demo-bureau", "分级")
    assert "各校分级评定 2026-08-01 至 2026-10-31（共 4 所）" in shown
    assert "A 优秀 0 ｜ B 良好 0 ｜ C 合格 2 ｜ D 不达标 2" in shown
    assert "1. 城西幼儿园（D，50.0 分）得分偏低，从未督查" in shown
    assert "2. 城东中心幼儿园（C，70.8 分）得分偏低，上次督查 2026-09-01" in shown
    assert "1. 城西中学 D 41.7 分" in shown
    assert ("自查 0 次，应不少于 6 次；自报隐患 2 条，被督查发现 1 条；月报按时 0/2 次"
            in shown)
    assert "按期整改 0/1 条；有一项得 0 分，最高评为 C" in shown  # 城东实验小学
    assert "只有教育局" in await say(door, "cd-leader", "分级")
    assert "你的角色不能使用" in await say(door, "demo-liaison", "分级")


def notices(db):
    return db.call(lambda session: session.exec(
        select(outbox.OutboxMessage).where(outbox.OutboxMessage.key.like("notice:%"))
        .order_by(outbox.OutboxMessage.id)).all())


async def test_publishing_the_notice_previews_then_sends_once_to_the_units_concerned(door, demo):
    from tests.test_hazard_loop import say
    preview = await say(door, "demo-bureau", "通报")
    assert "将通报 2026-08-01 至 2026-10-31 评为 D 级的 2 个单位" in preview
    assert "共 5 人" in preview and "回复「通报 确认」发送" in preview
    assert not notices(demo)

    assert "已通报 2 个单位，发送给 5 人" in await say(door, "demo-bureau", "通报 确认")
    rows = notices(demo)
    assert sorted(r.recipient for r in rows) == ["cx-leader", "cxyey-leader", "cxyey-liaison",
                                                 "cxzx-leader", "cxzx-liaison"]
    text = rows[0].payload["content"]
    assert text.startswith("【通报】2026-08-01 至 2026-10-31 隐患排查治理工作情况")
    assert "1. 城西中学（41.7 分）：自查 0 次" in text and "2. 城西幼儿园（50.0 分）" in text
    assert "已经发送过" in await say(door, "demo-bureau", "通报 确认")
    assert len(notices(demo)) == 5
    assert "没看懂" in await say(door, "demo-bureau", "通报 下个月")
