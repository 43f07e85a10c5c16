"""统计 and 月报情况 against the hand-counted district of tests/stats_fixtures.py."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.clock import FakeClock
from models import monthly as mu
from models.leader_monthly import Calendar, month_status
from models.org import unit_and_descendants
from models.scope_report import previous_period, report
from models.scope_stats import add_up
from models.stats import hazard_totals, periods_stats, unit_stats
from tests.conftest import make_config
from tests.stats_fixtures import TODAY, TZ, local, seed_district, unit_id

AREAS = {"fire": "消防安全", "chemicals": "危险化学品", "crowds": "人员密集场所",
         "food": "食品安全", "traffic": "交通安全", "buildings": "校舍安全"}
CAL = Calendar(due_day=5, late_days=5)


def scope_report(db, code, start=date(2026, 11, 1), end=TODAY):
    return db.call(lambda session: report(session=session, unit_id=unit_id(session, code),
                                          start=start, end=end, today=TODAY, tz=TZ,
                                          areas=AREAS))


@pytest.mark.parametrize("start, end, before", [
    (date(2026, 11, 1), date(2026, 11, 20), (date(2026, 10, 1), date(2026, 10, 20))),
    (date(2026, 10, 1), date(2026, 10, 31), (date(2026, 9, 1), date(2026, 9, 30))),
    (date(2026, 9, 1), date(2026, 9, 30), (date(2026, 8, 1), date(2026, 8, 31))),
    (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),
    (date(2026, 1, 1), date(2026, 11, 20), (date(2025, 1, 1), date(2025, 11, 20))),
    (date(2026, 11, 10), date(2026, 12, 9), (date(2026, 10, 11), date(2026, 11, 9))),
])
def test_the_period_before_is_the_same_days_a_month_earlier_or_as_long_just_before(
        start, end, before):
    assert previous_period(start, end) == before


def test_a_school_sees_its_own_hand_counted_numbers(demo):
    demo.call(seed_district)
    r = scope_report(demo, "CD-SY")
    assert r["units"] == 1
    t = r["totals"]
    assert (t["found"], t["found_general"], t["found_major"]) == (4, 3, 1)
    assert (t["rectified"], t["closed"], t["rate"]) == (2, 1, 0.5)
    assert r["statuses"] == {"reported": 0, "planned": 2, "rectified": 1, "closed": 1}
    assert r["areas"] == [("消防安全", 2), ("危险化学品", 1), ("人员密集场所", 1)]  # ties: by key
    assert r["before"]["found"] == 1  # H5 on 10-08; the same days of October
    assert r["now"] == {"open": 4, "open_major": 1, "overdue": 3, "overdue_major": 1}


def test_a_township_adds_up_its_schools_and_ranks_the_overdue(demo):
    demo.call(seed_district)
    r = scope_report(demo, "CD")
    assert r["units"] == 3
    assert (r["totals"]["found"], r["totals"]["rectified"], r["totals"]["rate"]) == (5, 2, 0.4)
    assert r["statuses"]["reported"] == 1 and ("食品安全", 1) in r["areas"]
    assert r["now"] == {"open": 5, "open_major": 1, "overdue": 3, "overdue_major": 1}
    assert [(t["unit"], t["overdue"]) for t in r["top"]] == [("城东实验小学", 3)]


def test_the_district_sees_everything_and_last_month_counts_as_it_stood(demo):
    demo.call(seed_district)
    r = scope_report(demo, "JYJ")
    t = r["totals"]
    assert (t["found"], t["found_general"], t["found_major"]) == (7, 5, 2)
    assert t["rectified"] == 2 and round(t["rate"], 3) == round(2 / 7, 3)
    assert r["now"] == {"open": 9, "open_major": 2, "overdue": 6, "overdue_major": 1}
    # a tie is broken by tree order (城东 before 城西)
    assert [(x["unit"], x["overdue"]) for x in r["top"]] == [("城东实验小学", 3), ("城西中学", 3)]
    october = scope_report(demo, "JYJ", date(2026, 10, 1), date(2026, 10, 31))
    assert october["totals"]["found"] == 4 and october["totals"]["closed"] == 1
    assert october["totals"]["overdue"] == 1  # H5, as it stood on 10-31
    assert october["before"]["found"] == 0


def seed_updates(*, session):
    """October's updates (due 11-05): CD and CD-SY on time, CD-YEY late, CX-ZX a draft."""
    now = local((11, 4))
    for code, late in (("CD", False), ("CD-SY", False), ("CD-YEY", True), ("CX-ZX", None)):
        row = mu.get_or_create(session=session, unit_id=unit_id(session, code),
                               month="2026-10", now=now)
        if late is not None:
            row.status, row.late = mu.UpdateStatus.SUBMITTED, late
            row.submitted_at = local((11, 8)) if late else now


def test_monthly_status_sorts_every_reporting_unit(demo):
    demo.call(seed_updates)

    def status(session, day):
        ids = [u.id for u in unit_and_descendants(session=session,
                                                  unit_id=unit_id(session, "JYJ"))]
        return month_status(session=session, unit_ids=ids, today=day, cal=CAL)
    after = demo.call(status, day=TODAY)
    assert after["month"] == "2026-10" and after["due"] == date(2026, 11, 5)
    assert {r["unit"]: r["state"] for r in after["rows"]} == {
        "城东镇中心校": "on_time", "城东实验小学": "on_time", "城东中心幼儿园": "late",
        "城西镇中心校": "missing", "城西中学": "missing", "城西幼儿园": "missing"}
    assert after["counts"] == {"on_time": 2, "late": 1, "missing": 3, "pending": 0}
    before_due = demo.call(status, day=date(2026, 11, 3))
    assert before_due["counts"]["pending"] == 3 and before_due["phase"] == "open"


# -- through the door ------------------------------------------------------------------------

@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=TZ))


@pytest.fixture
async def door(start_service, demo, database_url, fake_wecom):
    demo.call(seed_district)
    demo.call(seed_updates)
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


async def test_stats_through_the_door(door):
    from tests.test_hazard_loop import say
    school = await say(door, "demo-principal", "统计")
    assert "城东实验小学 隐患统计" in school and "2026-11-01 至 2026-11-20" in school
    assert "发现隐患 4 条（一般 3，重大 1）" in school
    assert "上期同期 1 条（2026-10-01 至 2026-10-20），↑3" in school
    assert "整改率 50%" in school
    assert "按状态：待制定整改方案 0 ｜ 整改中 2 ｜ 待复查 1 ｜ 已销号 1" in school
    assert "消防安全 2" in school
    assert "未销号 4 条（重大 1），逾期 3 条（重大 1）" in school
    assert "逾期最多" not in school  # one unit: no ranking

    district = await say(door, "demo-bureau", "统计")
    assert "含下属 6 个单位" in district and "发现隐患 7 条（一般 5，重大 2）" in district
    assert "1. 城东实验小学 3 条\n2. 城西中学 3 条" in district
    last = await say(door, "jyj-leader", "统计 上月")
    assert "2026-10-01 至 2026-10-31" in last and "发现隐患 4 条" in last
    assert "没看懂" in await say(door, "demo-bureau", "统计 下个猴年")
    assert "你的角色不能使用「统计」" in await say(door, "demo-liaison", "统计")


async def test_monthly_status_through_the_door(door):
    from tests.test_hazard_loop import say
    shown = await say(door, "cd-leader", "月报情况")
    assert "城东镇中心校 2026-10 月报提交情况" in shown and "截止日期 2026-11-05" in shown
    assert "应交 3 个单位：按时 2，迟交 1，逾期未交 0" in shown
    assert "迟交（1）：\n· 城东中心幼儿园" in shown
    district = await say(door, "demo-bureau", "月报情况 2026-10")
    assert "逾期未交（3）" in district and "· 城西中学（已开始填写）" in district
    assert "没看懂" in await say(door, "demo-bureau", "月报情况 十三月")


@pytest.mark.parametrize("code", ["JYJ", "CD", "CD-SY"])
def test_one_statement_per_source_gives_what_each_period_and_unit_alone_gives(demo, code):
    # 统计 asks for both periods at once and, for a whole district, without an IN list of
    # its units; the figures are those of unit_stats period by period, added up
    demo.call(seed_district)
    periods = [(date(2026, 11, 1), TODAY), (date(2026, 10, 1), date(2026, 10, 20)),
               (date(2026, 1, 1), TODAY)]

    def figures(session):
        ids = [u.id for u in unit_and_descendants(session=session,
                                                  unit_id=unit_id(session, code))]
        alone = [unit_stats(session=session, unit_ids=ids, start=a, end=b, tz=TZ, today=TODAY)
                 for a, b in periods]
        together = periods_stats(session=session, unit_ids=ids, periods=periods, tz=TZ,
                                 today=TODAY)
        totals = hazard_totals(session=session, unit_ids=ids, periods=periods, tz=TZ,
                               today=TODAY)
        return alone, together, totals
    alone, together, totals = demo.call(figures)
    assert together == alone
    for stats, total in zip(alone, totals):
        summed = add_up(stats.values())
        assert total == {k: summed[k] for k in total}
    assert totals[2]["found"] > 0
