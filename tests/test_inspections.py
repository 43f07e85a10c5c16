"""Inspections and supervision through the real door (findings become hazards of the inspected
unit), and the half-month quota with a moved clock: the short leader reminded three days
before the period ends, the bureau told the day after."""
from __future__ import annotations

import asyncio

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from models import hazard as hz
from models import inspection as insp
from models.base import as_utc
from models.digest import DigestItem
from models.org import get_identity
from tests.test_campaigns import sweeper_for
from tests.test_hazard_loop import pushes_to, say, text_of
from tests.test_reminders import outbox_rows

TZ = ZoneInfo("Asia/Shanghai")
NUMBER = re.compile(r"YH\d{4}-\d{6}")


def at(y, m, d, hh=8, mm=5):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def hazards(db, numbers):
    return db.call(lambda session: [hz.by_number(session=session, number=n) for n in numbers])


def inspections(db):
    return db.call(lambda session: list(session.exec(select(insp.Inspection)
                                                     .order_by(insp.Inspection.id))))


async def test_an_inspection_with_two_findings_files_two_hazards(service, demo, fake_wecom):
    asked = await say(service, "demo-principal", "检查 消防安全专项检查")
    assert "发现问题请逐条回复" in asked and "完成" in asked
    assert "已记下第 1 条：三楼东侧消防通道堵塞 @教学楼三楼" in await say(
        service, "demo-principal", "三楼东侧消防通道堵塞 @教学楼三楼")
    media = fake_wecom.add_media(b"\xff\xd8blocked", "image/jpeg", "blocked.jpg")
    assert "第 1 条" in (await service.wecom.image("demo-principal", media)).reply_text
    assert "第 2 条" in await say(service, "demo-principal", "重大活动审批制度未落实")
    assert "第 3 条" in await say(service, "demo-principal", "灭火器压力不足")
    assert "已删除：灭火器压力不足" in await say(service, "demo-principal", "撤回")
    saved = await say(service, "demo-principal", "完成")

    numbers = NUMBER.findall(saved)
    assert len(numbers) == 2 and "已登记检查：消防安全专项检查" in saved
    first, second = hazards(demo, numbers)
    principal = demo.call(get_identity, userid="demo-principal")
    assert {h.source for h in (first, second)} == {"inspection"}
    assert {h.unit_id for h in (first, second)} == {principal.unit_id}
    assert (first.location, second.level) == ("教学楼三楼", hz.Level.GENERAL)  # 重大活动: not 重大
    assert first.area == "fire" and first.reporter_id == principal.person_id
    assert len(demo.call(hz.photos, hazard_id=first.id)["report"]) == 1
    [record] = inspections(demo)
    assert (record.kind, record.person_id, record.announced) == ("inspection",
                                                                principal.person_id, True)
    [told] = await pushes_to(fake_wecom, "demo-liaison", 1)
    assert "检查发现问题" in text_of(told) and numbers[0] in text_of(told)

    status = await say(service, "demo-principal", "检查情况")
    assert "李校长" not in status.split("已达要求")[0] and "赵副校长（其他负责人）：0/2 次" in status
    assert "你的角色不能使用「检查」" in await say(service, "demo-liaison", "检查 消防")


async def test_an_inspection_without_findings_files_nothing(service, demo):
    await say(service, "cdsy-deputy", "检查 校门口上下学值守")
    assert "未发现问题" in await say(service, "cdsy-deputy", "完成")
    assert len(inspections(demo)) == 1
    assert demo.call(lambda session: session.exec(select(hz.Hazard)).all()) == []


async def test_a_township_visit_files_supervisor_hazards_in_the_schools_ledger(
        service, demo, fake_wecom):
    asked = await say(service, "cd-leader", "督查 城东实验小学 消防安全专项督查")
    assert "已开始登记对 城东实验小学 的督查" in asked
    await say(service, "cd-leader", "重大 化学实验室危化品混放，无专柜 @实验楼二楼")
    await say(service, "cd-leader", "疏散指示标志损坏 @教学楼一楼")
    saved = await say(service, "cd-leader", "完成")
    numbers = NUMBER.findall(saved)
    assert len(numbers) == 2 and "（督查发现）" in saved
    major, general = hazards(demo, numbers)
    school = demo.call(get_identity, userid="demo-liaison")
    assert {h.source for h in (major, general)} == {"supervisor"}
    assert {h.unit_id for h in (major, general)} == {school.unit_id}
    assert (major.level, general.level) == (hz.Level.MAJOR, hz.Level.GENERAL)

    ledger = await say(service, "demo-liaison", "台账")
    assert numbers[0] in ledger and numbers[1] in ledger
    assert "（督查发现）" in await say(service, "demo-liaison", f"隐患 {numbers[1]}")
    for user in ("demo-liaison", "demo-principal"):  # the school is told what to plan
        for _ in range(100):  # the principal also gets the major alert card, in either order
            if any("督查发现问题" in text_of(p) and numbers[1] in text_of(p)
                   for p in fake_wecom.pushes_to(user)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{user} was not told about {numbers[1]}")
    [card] = await pushes_to(fake_wecom, "demo-bureau", 1)  # the major one is on the board
    assert card.body["main_title"]["title"] == f"【重大隐患】{numbers[0]}"
    [record] = inspections(demo)
    assert (record.kind, record.announced) == ("supervision", True)


async def test_an_unannounced_visit_and_who_may_visit_whom(service, demo):
    await say(service, "demo-bureau", "暗访 CD-SY 校门口值守情况")
    assert "暗访" in await say(service, "demo-bureau", "完成")
    await say(service, "cd-liaison", "督查 城东中心幼儿园 暗访 午睡室值守")
    await say(service, "cd-liaison", "完成")
    assert [(r.kind, r.announced) for r in inspections(demo)] == [("supervision", False)] * 2
    assert "没有找到下属单位「城东实验小学」" in await say(service, "cx-leader",
                                                          "督查 城东实验小学 消防")
    assert "镇中心校和教育局" in await say(service, "demo-principal", "督查 城东实验小学 消防")
    assert "你的角色不能使用「督查」" in await say(service, "demo-liaison", "督查 城东实验小学 消防")
    assert "请写明督查内容" in await say(service, "cd-leader", "督查 城东实验小学")
    status = await say(service, "demo-bureau", "检查情况")
    assert "上级督查 2 次，其中暗访 2 次" in status and "城西中学 杨校长" in status


@pytest.mark.parametrize("day, period", [
    (date(2026, 2, 1), (date(2026, 2, 1), date(2026, 2, 15))),
    (date(2026, 2, 15), (date(2026, 2, 1), date(2026, 2, 15))),
    (date(2026, 2, 16), (date(2026, 2, 16), date(2026, 2, 28))),
    (date(2024, 2, 29), (date(2024, 2, 16), date(2024, 2, 29))),
    (date(2026, 12, 31), (date(2026, 12, 16), date(2026, 12, 31))),
])
def test_half_months_run_from_the_first_and_the_sixteenth(day, period):
    assert (insp.period_of(day).start, insp.period_of(day).end) == period


def test_the_previous_half_month_crosses_months_and_years():
    assert insp.previous_period(date(2027, 1, 3)).start == date(2026, 12, 16)
    assert insp.previous_period(date(2026, 3, 20)).end == date(2026, 3, 15)


async def test_a_leader_short_of_quota_is_reminded_and_the_bureau_is_told(demo):
    principal = demo.call(get_identity, userid="demo-principal")
    deputy = demo.call(get_identity, userid="cdsy-deputy")
    for who, days in ((deputy, (17, 24)), (principal, ()), (deputy, ())):
        for d in days:
            demo.call(insp.record, unit_id=who.unit_id, person_id=who.person_id,
                      kind=insp.Kind.INSPECTION, announced=True, content="日常检查",
                      at=at(2026, 11, d, 10), photo_ids=[])
    clock = FakeClock(at(2026, 11, 20))
    sweeper = sweeper_for(demo, clock)
    day = date(2026, 11, 20)  # the first half's list is then too late to catch up
    kg = demo.call(get_identity, userid="cdyey-leader")
    while day <= date(2026, 12, 6):
        if day == date(2026, 11, 30):  # reminded on the 27th, then at 23:30 on the last day:
            demo.call(insp.record, unit_id=kg.unit_id, person_id=kg.person_id,  # in time
                      kind=insp.Kind.INSPECTION, announced=True, content="午睡室检查",
                      at=at(2026, 11, 30, 23, 30), photo_ids=[])
        for hour in (1, 8, 16):
            clock.set(at(day.year, day.month, day.day, hour))
            await sweeper.run_once()
        day += timedelta(days=1)

    items = demo.call(lambda session: list(session.exec(
        select(DigestItem).where(DigestItem.key.startswith("inspection-quota:2026-11-16:")))))
    reminded = {i.userid: as_utc(i.created_at).astimezone(TZ).date() for i in items}
    assert reminded == {u: date(2026, 11, 27) for u in ("demo-principal", "cxzx-leader",
                                                        "cxyey-leader", "cdyey-leader")}
    assert len(items) == 4  # once each, though the sweep ran three more days
    [digest] = outbox_rows(demo, "digest:demo-principal:2026-11-27")
    assert "已带队检查 0 次" in digest.payload["content"] and "还剩 3 天" in digest.payload["content"]

    [report] = outbox_rows(demo, "inspection-short:2026-11-16:")
    assert report.recipient == "demo-bureau"
    assert as_utc(report.created_at).astimezone(TZ).date() == date(2026, 12, 1)
    text = report.payload["content"]
    assert "城东实验小学 李校长（主要负责人）：0/1 次" in text
    assert "城西中学 杨校长" in text and "赵副校长" not in text and "刘园长" not in text
    assert not outbox_rows(demo, "inspection-short:2026-11-01:")  # too late to catch up
