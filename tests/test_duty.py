"""Duty through the real door, with the service's clock moved over National Day 2025: 值班表,
the check-in card, 平安 / 报告 / 交班, 紧急, 查岗 / 在岗, 请假 and a location check-in."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from models import duty, duty_spot
from tests.conftest import make_config
from tests.test_duty_sweeps import at, put_slot
from tests.test_hazard_loop import say, text_of
from tests.test_reminders import make_sweeper, outbox_rows


@pytest.fixture
def clock():
    return FakeClock(at(2025, 9, 29, 10, 0))


@pytest.fixture
async def door(start_service, demo, database_url, fake_wecom):
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


async def about(fake, user, marker, count=1, timeout=5.0):
    """The pushes to ``user`` that mention ``marker`` (other features push digests too)."""
    for _ in range(int(timeout / 0.05)):
        got = [p for p in fake.pushes_to(user) if marker in str(p.body)]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{user} got {len(got)} pushes about {marker!r}, wanted {count}")


def shift_row(db, shift_id):
    return db.call(lambda session: session.get(duty.Shift, shift_id))


async def test_a_holiday_slot_set_by_message_checked_in_by_card_and_closed_with_平安(
        door, demo, clock, fake_wecom):
    done = await say(door, "demo-principal", "值班表 10月1日 24小时 孙值班 赵副校长")
    assert "已排班：城东实验小学 2025-10-01（周三）" in done
    assert "24小时 08:00–次日08:00 值班：孙值班，带班领导：赵副校长" in done
    short = await say(door, "demo-principal", "值班表 10月2日 白班 孙值班")
    assert "须 24 小时专人值班、领导带班" in short
    assert "不能使用" in await say(door, "demo-duty", "值班表 10月3日 24小时 孙值班")
    week = await say(door, "demo-liaison", "值班表")
    assert "2025-10-01（周三） 【国庆节】" in week and "⚠ 节假日须" in week
    assert week.index("赵副校长") < week.index("2025-10-02")

    sweeper = make_sweeper(demo, clock)
    clock.set(at(2025, 9, 29, 10, 2))
    await sweeper.run_once()
    [notice] = await about(fake_wecom, "cdsy-deputy", "值班安排变更")
    assert "你被安排为带班领导" in text_of(notice)

    clock.set(at(2025, 10, 1, 8, 16))
    await sweeper.run_once()
    [card] = await about(fake_wecom, "demo-duty", "值班未签到")
    assert card.msgtype == "template_card"
    key = card.body["button_list"][0]["key"]
    click = await door.wecom.card_click("demo-duty", key, card.task_id, card.response_code)
    assert "<ReplaceName><![CDATA[已签到]]></ReplaceName>" in click.reply_xml
    [answer] = await about(fake_wecom, "demo-duty", "签到成功")
    assert "晚 16 分钟" in text_of(answer)

    clock.set(at(2025, 10, 1, 8, 47))
    await sweeper.run_once()
    assert sorted(r.recipient for r in outbox_rows(demo, "duty-esc:")) == ["demo-duty"]
    today = await say(door, "demo-principal", "值班")
    assert "08:16 已签到" in today and "城东实验小学：1 班，签到 1（100%），按时 0" in today
    assert "签到情况" in today and "签到情况" not in await say(door, "demo-duty", "值班")

    closed = await say(door, "demo-duty", "平安")
    assert "已报平安" in closed
    shift = shift_row(demo, int(key.rsplit(":", 1)[1]))
    assert shift.closed_at is not None and shift.checked_in_at is not None
    assert "没有你正在进行的值班" in await say(door, "demo-duty", "平安")


async def test_紧急_reaches_every_leader_of_the_chain_at_once_even_at_night(
        door, demo, clock, fake_wecom):
    put_slot(demo)
    clock.set(at(2025, 10, 1, 23, 30))
    reply = await say(door, "demo-duty", "紧急 实验楼二楼冒烟，已疏散")
    assert "已立即报告 5 位领导" in reply
    for user in ("demo-principal", "cdsy-deputy", "cd-leader", "cd-liaison", "demo-bureau"):
        [alert] = await about(fake_wecom, user, "紧急情况")
        assert "【紧急情况】城东实验小学 孙值班" in text_of(alert)
        assert "实验楼二楼冒烟" in text_of(alert) and "带班领导：赵副校长" in text_of(alert)
    assert all(r.urgent for r in outbox_rows(demo, "duty-urgent:"))
    await asyncio.sleep(0.2)
    assert not [p for u in ("demo-liaison", "cx-leader") for p in fake_wecom.pushes_to(u)
                if "紧急情况" in text_of(p)]


async def test_报告_closes_with_a_note_for_the_leader_and_交班_reaches_the_next_shift(
        door, demo, clock, fake_wecom):
    first = put_slot(demo)
    put_slot(demo, day=date(2025, 10, 2), person="demo-liaison")
    clock.set(at(2025, 10, 1, 7, 40))
    assert "签到成功" in await say(door, "demo-duty", "签到 门卫室")
    assert "你已于 2025-10-01 07:40 签到（门卫室）" in await say(door, "demo-duty", "签到")
    clock.set(at(2025, 10, 2, 7, 30))
    handed = await say(door, "demo-duty", "交班 东门门禁故障，已报修")
    assert "已转给下一班值班人员 张联络" in handed
    [note] = await about(fake_wecom, "demo-liaison", "交班留言")
    assert "东门门禁故障" in text_of(note)
    reported = await say(door, "demo-duty", "报告 夜间巡查两次，东门门禁故障已报修")
    assert "已记录值班情况并结束本班" in reported and "已报告带班领导" in reported
    [report] = await about(fake_wecom, "cdsy-deputy", "值班报告")
    assert "【值班报告】" in text_of(report) and "夜间巡查两次" in text_of(report)
    assert shift_row(demo, first).close_note.startswith("夜间巡查两次")
    clock.set(at(2025, 10, 2, 8, 1))
    checked = await say(door, "demo-liaison", "签到")
    assert "上一班（孙值班）交班留言：东门门禁故障" in checked


async def test_a_spot_check_answered_in_time_is_logged_with_its_answer_time(
        door, demo, clock, fake_wecom):
    put_slot(demo)
    clock.set(at(2025, 10, 1, 21, 0))
    assert "不能使用" in await say(door, "demo-duty", "查岗 城东实验小学")
    assert "不能使用" in await say(door, "demo-principal", "查岗 城东实验小学")  # a school
    asked = await say(door, "demo-bureau", "查岗 城东实验")
    assert "已向 城东实验小学 当前值班人员 孙值班 发出查岗，须在 21:05 前确认在岗" in asked
    [card] = await about(fake_wecom, "demo-duty", "duty:spot:")
    clock.advance(minutes=2, seconds=13)
    assert "已确认在岗（用时 2 分 13 秒）" in await say(door, "demo-duty", "在岗")
    [result] = await about(fake_wecom, "demo-bureau", "查岗结果")
    assert "确认在岗，用时 2 分 13 秒" in text_of(result)
    [check] = demo.call(lambda session: session.exec(select(duty_spot.SpotCheck)).all())
    assert check.answered_at is not None and check.asked_by is not None

    clock.set(at(2025, 10, 1, 23, 0))
    await say(door, "cd-leader", "查岗 CD-SY")  # a township may check its own schools
    cards = await about(fake_wecom, "demo-duty", "duty:spot:", 2)
    clock.advance(minutes=7)
    click = await door.wecom.card_click("demo-duty", cards[-1].body["button_list"][0]["key"],
                                        cards[-1].task_id, cards[-1].response_code)
    assert "已确认在岗" in click.reply_xml
    log = await say(door, "demo-bureau", "查岗记录")
    assert "2025-10-01 23:00 城东实验小学 孙值班（王中心）：23:07 应答，用时 7 分 0 秒" in log
    assert "（周安全）：21:02 应答，用时 2 分 13 秒" in log
    assert "没有找到下属单位" in await say(door, "cd-leader", "查岗 城西中学")
    assert "当前没有排班" in await say(door, "demo-bureau", "查岗 城西中学")


async def test_leave_is_flagged_against_the_roster(door, demo, clock, fake_wecom):
    put_slot(demo)
    reply = await say(door, "demo-duty", "请假 10月1日 10月3日")
    assert "已登记请假：2025-10-01（周三） 至 2025-10-03（周五）" in reply
    assert "这期间值班表仍安排了你" in reply and "已提醒排班负责人调整" in reply
    for keeper in ("demo-principal", "demo-liaison"):
        [flag] = await about(fake_wecom, keeper, "值班冲突")
        assert "【值班冲突】孙值班 已请假" in text_of(flag)
    again = await say(door, "demo-principal", "值班表 10月2日 24小时 孙值班 赵副校长")
    assert "孙值班 在这一天请假" in again
    assert "⚠ 孙值班 在请假" in await say(door, "demo-principal", "值班表 10月1日")
    assert "不能早于" in await say(door, "demo-duty", "请假 10月3日 10月1日")
    assert "已登记请假：2025-10-05（周日）。" in await say(door, "demo-duty", "请假 10月5日")


async def test_a_location_message_checks_in_with_its_place(door, demo, clock):
    shift_id = put_slot(demo)
    clock.set(at(2025, 10, 1, 7, 55))
    fields = ("<Location_X>31.78</Location_X><Location_Y>119.95</Location_Y><Scale>15</Scale>"
              "<Label><![CDATA[城东实验小学门卫室]]></Label>")
    delivery = await door.wecom.post_plaintext(
        door.wecom.message_xml("demo-duty", "location", fields))
    assert "签到成功" in delivery.reply_text and "地点：城东实验小学门卫室" in delivery.reply_text
    assert shift_row(demo, shift_id).checkin_location == "城东实验小学门卫室"
    clock.set(at(2025, 10, 2, 9, 0))
    assert "现在没有需要你签到的值班" in await say(door, "demo-duty", "签到")


async def test_the_random_schedule_asks_at_its_moments_once_each(door, demo, clock):
    from reminders.duty_spot import moments
    put_slot(demo)  # 24 hours from 2025-10-01 08:00
    assert "每天在示范区教育局下属单位中随机查岗 3 次" in await say(door, "demo-bureau",
                                                          "查岗 随机 3")
    plan_id = demo.call(lambda session: session.exec(select(duty_spot.SpotPlan)).one().id)
    sweeper = make_sweeper(demo, clock)
    asked = 0
    for moment in sorted(moments(plan_id, 3, date(2025, 10, 1), at(2025, 10, 1).tzinfo)):
        clock.set(moment + timedelta(minutes=2))
        await sweeper.run_once()
        await sweeper.run_once()
        asked += moment >= at(2025, 10, 1, 8, 0)  # before 08:00 nobody is on duty
        checks = demo.call(lambda session: session.exec(select(duty_spot.SpotCheck)).all())
        assert len(checks) == asked
    assert all(c.asked_by is None and c.plan_key.startswith(f"plan:{plan_id}:2025-10-01:")
               for c in checks)
    assert len(outbox_rows(demo, "duty-spot:")) == asked
