"""自查 through the real callback: a checklist area item by item, each 否 a hazard draft, the
run and its answers stored as they are given."""
from __future__ import annotations

import re
from datetime import timedelta
from functools import partial

import pytest
from sqlmodel import select

from bot.clock import Clock
from handlers.selfcheck import parse_answer
from models import hazard as hz
from models import selfcheck
from models.org import Person
from models.selfcheck import Answer, SelfCheckRun

USER = "demo-liaison"
FIRE = ["fire-1", "fire-2", "fire-3"]


async def say(svc, user, text):
    delivery = await svc.wecom.text(user, text)
    assert delivery.status == 200
    return delivery.reply_text or ""


def runs_of(db, userid=USER):
    def query(*, session):
        person = session.exec(select(Person).where(Person.userid == userid)).one()
        return list(session.exec(select(SelfCheckRun).where(SelfCheckRun.person_id == person.id)
                                 .order_by(SelfCheckRun.id)).all())
    return db.call(query)


def answers_of(db, run_id):
    rows = db.call(selfcheck.get_run_answers, run_id=run_id)
    return {a.item_id: (a.answer, a.note, a.hazard_id) for a in rows}


async def test_a_full_fire_run_files_the_no_as_a_hazard_and_stores_every_answer(service, demo):
    first = await say(service, USER, "自查 消防")
    assert "开始【消防安全】自查，共 3 项" in first
    assert "第 1/3 项：“防风险、除隐患、保平安、迎大庆”消防安全检查专项行动是否扎实开展" in first
    [run] = runs_of(demo)
    assert (run.area, run.status, run.finished_at) == ("fire", "open", None)

    assert "第 2/3 项：校园违规采用易燃可燃装饰装修，占用、堵塞疏散通道、安全出口等问题情况。" in await say(
        service, USER, "是")
    asked = await say(service, USER, "否 东侧通道堆放杂物")
    assert "隐患：东侧通道堆放杂物" in asked and "具体位置" in asked
    draft = await say(service, USER, "教学楼东侧")
    assert "位置：教学楼东侧" in draft and "等级：一般事故隐患" in draft and "确认" in draft
    filed = await say(service, USER, "确认")
    number = re.search(r"YH\d{4}-\d{6}", filed).group(0)
    assert "第 3/3 项：学校建筑物是否有消防验收手续。" in filed

    summary = await say(service, USER, "不适用")
    assert "【消防安全】自查完成，共 3 项" in summary
    assert "是 1 项，否 1 项，不适用 1 项" in summary and f"已上报隐患：{number}" in summary

    hazard = demo.call(hz.by_number, number=number)
    assert (hazard.source, hazard.level, hazard.area) == ("self_check", "general", "fire")
    assert (hazard.description, hazard.location) == ("东侧通道堆放杂物", "教学楼东侧")
    assert number in await say(service, USER, "台账")
    [run] = runs_of(demo)
    assert run.status == "finished" and run.finished_at is not None
    assert answers_of(demo, run.id) == {"fire-1": ("yes", "", None),
                                        "fire-2": ("no", "东侧通道堆放杂物", hazard.id),
                                        "fire-3": ("na", "", None)}
    since = run.started_at - timedelta(minutes=1)
    assert demo.call(selfcheck.runs_for_unit, unit_id=run.unit_id, since=since) == 1
    assert "没有听懂" in await say(service, USER, "是")  # the conversation is over


async def test_a_no_with_a_location_goes_straight_to_the_draft_and_may_stay_unreported(
        service, demo):
    await say(service, USER, "自查 消防")
    draft = await say(service, USER, "否 @一楼大厅")
    assert "隐患：自查发现：“防风险、除隐患、保平安、迎大庆”消防安全检查专项行动" in draft
    assert "位置：一楼大厅" in draft
    assert "请回复「确认」「修改」或「不上报」" in await say(service, USER, "好吧")
    assert "已记录“否”，未上报隐患" in await say(service, USER, "不上报")
    assert "具体位置" in await say(service, USER, "2")
    moved_on = await say(service, USER, "不上报")  # at the location step too
    assert "第 3/3 项" in moved_on
    summary = await say(service, USER, "1")
    assert "是 1 项，否 2 项，不适用 0 项" in summary and "另有 2 项“否”未上报隐患" in summary
    assert "已上报隐患" not in summary
    [run] = runs_of(demo)
    answers = answers_of(demo, run.id)
    assert answers["fire-1"] == ("no", "@一楼大厅", None) and answers["fire-2"][2] is None
    assert "没有未销号的隐患" in await say(service, USER, "台账")


async def test_edit_rewrites_the_draft_description_and_location(service, demo):
    await say(service, USER, "自查 防火")
    await say(service, USER, "不是")
    assert "当前描述：自查发现：" in await say(service, USER, "修改")  # at the location step
    assert "隐患：灭火器过期" in await say(service, USER, "灭火器过期")
    assert "位置：二楼走廊" in await say(service, USER, "@二楼走廊")
    assert "当前描述：灭火器过期" in await say(service, USER, "修改")
    draft = await say(service, USER, "二楼走廊灭火器压力不足 @二楼东走廊")
    assert "隐患：二楼走廊灭火器压力不足" in draft and "位置：二楼东走廊" in draft
    number = re.search(r"YH\d{4}-\d{6}", await say(service, USER, "确认")).group(0)
    hazard = demo.call(hz.by_number, number=number)
    assert (hazard.description, hazard.location) == ("二楼走廊灭火器压力不足", "二楼东走廊")
    [run] = runs_of(demo)
    assert answers_of(demo, run.id)["fire-1"] == ("no", "", hazard.id)


async def test_cancel_mid_way_keeps_the_answers_and_marks_the_run_abandoned(service, demo):
    await say(service, USER, "自查 消防")
    await say(service, USER, "对")
    await say(service, USER, "否 疏散指示灯不亮")
    cancelled = await say(service, USER, "取消")
    assert "已中止【消防安全】自查，已答的 2/3 项已保存" in cancelled
    [run] = runs_of(demo)
    assert run.status == "abandoned" and run.finished_at is None
    assert answers_of(demo, run.id) == {"fire-1": ("yes", "", None),
                                        "fire-2": ("no", "疏散指示灯不亮", None)}
    assert "当前没有进行中的操作" in await say(service, USER, "取消")  # the usual 取消 again
    assert demo.call(selfcheck.runs_for_unit, unit_id=run.unit_id,
                     since=run.started_at - timedelta(days=1)) == 0


def test_a_new_run_abandons_one_left_open_and_re_answering_replaces(demo):
    """A run whose conversation timed out stays open until the person starts another."""
    person = demo.call(lambda *, session: session.exec(
        select(Person).where(Person.userid == USER)).one())
    now = Clock().now()
    start = dict(unit_id=person.unit_id, person_id=person.id, now=now)
    first = demo.call(selfcheck.start_run, area="fire", **start)
    for answer, note in ((Answer.NO, "杂物"), (Answer.YES, "已清理")):
        demo.call(selfcheck.record_answer, run_id=first.id, item_id="fire-1", answer=answer,
                  note=note, now=now)
    assert answers_of(demo, first.id) == {"fire-1": ("yes", "已清理", None)}
    second = demo.call(selfcheck.start_run, area="food", **start)
    demo.call(selfcheck.finish_run, run_id=second.id, now=now + timedelta(hours=1))
    assert [r.status for r in runs_of(demo)] == ["abandoned", "finished"]
    count = partial(demo.call, selfcheck.runs_for_unit, unit_id=person.unit_id)
    assert count(since=now) == 1 and count(since=now, until=now + timedelta(hours=1)) == 0


async def test_bad_answers_ask_the_same_item_again(service, demo):
    await say(service, USER, "自查 消防")
    for text in ("也许吧", "12", "yesterday", "👍"):
        again = await say(service, USER, text)
        assert "没有听懂" in again and "第 1/3 项" in again
    assert "说明太长了" in await say(service, USER, "是 " + "很" * 501)
    assert "第 2/3 项" in await say(service, USER, "跳过")
    [run] = runs_of(demo)
    assert answers_of(demo, run.id) == {"fire-1": ("na", "", None)}


async def test_a_restart_mid_run_continues_at_the_same_item(start_service, demo):
    first = await start_service()
    await say(first, USER, "自查 消防")
    await say(first, USER, "是")
    await first.server.close()
    second = await start_service()  # same database, new process state
    assert "第 3/3 项" in await say(second, USER, "无")
    assert "自查完成" in await say(second, USER, "3")
    [run] = runs_of(demo)
    assert run.status == "finished"
    assert {k: v[0] for k, v in answers_of(demo, run.id).items()} == dict(
        zip(FIRE, ("yes", "na", "na")))


async def test_without_an_area_or_with_an_unclear_one_the_areas_are_listed(service, demo):
    listed = await say(service, USER, "自查")
    assert "共 12 个领域" in listed and "2. 消防安全（3项）：自查 消防" in listed
    choose = await say(service, USER, "自查 安全")
    assert "「安全」对应 5 个领域" in choose and "回复「自查 消防」" in choose
    assert "没有找到与「篮球」对应的清单" in await say(service, USER, "自查 篮球")
    assert "第 1/6 项" in await say(service, USER, "自查8")  # 食品安全 by its number
    assert [r.area for r in runs_of(demo)] == ["food"]


async def test_help_lists_self_check_once(service):
    help_text = await say(service, USER, "帮助")
    assert help_text.count("自查 <领域> —— 按排查清单逐项自查（如：自查 消防）") == 1
    assert help_text.count("取消 ——") == 1


@pytest.mark.parametrize("text, expected", [
    ("是", (Answer.YES, "")), ("1", (Answer.YES, "")), ("对", (Answer.YES, "")),
    ("Yes", (Answer.YES, "")), ("是的，已整改", (Answer.YES, "已整改")),
    ("否 东侧通道堆放杂物", (Answer.NO, "东侧通道堆放杂物")), ("不是", (Answer.NO, "")),
    ("否，东侧通道　堆放杂物", (Answer.NO, "东侧通道 堆放杂物")), ("２ 杂物", (Answer.NO, "杂物")),
    ("不适用", (Answer.NA, "")), ("无", (Answer.NA, "")), ("跳过", (Answer.NA, "")),
    ("3", (Answer.NA, "")), ("12", None), ("no1", None), ("也许", None), ("", None),
])
def test_answers_are_read_with_their_notes(text, expected):
    assert parse_answer(text) == expected
