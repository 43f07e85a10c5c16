"""The closed loop through the real callback: report → plan → rectified → review → closed,
for a general and a major hazard, with the pushes checked in the fake WeCom."""
from __future__ import annotations

import asyncio
import re

import pytest

from bot.clock import Clock


async def say(svc, user, text):
    delivery = await svc.wecom.text(user, text)
    assert delivery.status == 200
    return delivery.reply_text or ""


async def pushes_to(fake, user, count, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        got = fake.pushes_to(user)
        if len(got) >= count:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{user} got {len(fake.pushes_to(user))} pushes, wanted {count}")


def text_of(push):
    if push.msgtype == "text":
        return push.body["content"]
    return str(push.body)


async def report(svc, user="demo-liaison", text="上报 三楼东侧消防通道堵塞 @教学楼三楼",
                 level="一般", area=None):
    asked = await say(svc, user, text)
    assert "领域" in asked
    assert "一般" in await say(svc, user, area or "是")
    assert "照片" in await say(svc, user, level)
    assert "请确认" in await say(svc, user, "跳过")
    reply = await say(svc, user, "确认")
    number = re.search(r"YH\d{4}-\d{6}", reply).group(0)
    return number, reply


PLAN = "责任部门:总务处 责任人:孙值班 措施:清理杂物并张贴禁止堆放标识 资金:无需资金 时限:3天后 预案:设置警示标志，专人值守"


async def test_a_general_hazard_runs_the_whole_loop(service, fake_wecom):
    number, reply = await report(service)
    assert number == f"YH{Clock().now().year}-000001"
    assert "整改 " + number in reply

    saved = await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    assert "整改方案已记录" in saved and "已通知责任人 孙值班" in saved
    [assigned] = await pushes_to(fake_wecom, "demo-duty", 1)
    assert number in text_of(assigned) and "整改任务" in text_of(assigned)

    assert "整改后的现场照片" in await say(service, "demo-liaison", f"整改完成 {number}")
    media = fake_wecom.add_media(b"\xff\xd8after", "image/jpeg", "after.jpg")
    done = (await service.wecom.image("demo-liaison", media)).reply_text
    assert "已标记整改完成" in done and "2 位负责人" in done  # principal and deputy
    pushed = await pushes_to(fake_wecom, "demo-principal", 3)  # sent together, any order
    by_type = {p.msgtype: p for p in pushed}
    card, caption, after = by_type["template_card"], by_type["text"], by_type["image"]
    assert card.msgtype == "template_card" and number in card.body["main_title"]["title"]
    assert "整改后 1 张" in text_of(caption)  # the reviewer sees the scene as it is now
    assert fake_wecom.media[after.body["media_id"]][0] == b"\xff\xd8after"

    assert "不能对隐患" in await say(service, "demo-liaison", f"复查 {number} 通过")
    failed = await say(service, "demo-principal", f"复查 {number} 不通过 警示标志未设置")
    assert "复查不通过" in failed
    told = await pushes_to(fake_wecom, "demo-duty", 2)
    assert "警示标志未设置" in text_of(told[-1])

    await say(service, "demo-liaison", f"整改完成 {number}")
    await say(service, "demo-liaison", "跳过")
    await pushes_to(fake_wecom, "demo-principal", 6)  # a new card, its caption and photo
    card = [p for p in fake_wecom.pushes_to("demo-principal")
            if p.msgtype == "template_card"][-1]
    click = await service.wecom.card_click("demo-principal", f"hz:pass:{number}", card.task_id,
                                           card.response_code)
    assert "<ReplaceName><![CDATA[已通过]]></ReplaceName>" in click.reply_xml

    details = await say(service, "demo-principal", f"隐患 {number}")
    assert "已销号" in details
    for step in ("上报", "制定整改方案", "整改完成", "复查不通过：警示标志未设置", "复查通过（销号）"):
        assert step in details
    assert "整改前 0 张 ｜ 整改后 1 张" in details


async def test_a_major_hazard_alerts_the_chain_at_once_and_is_reviewed_above_the_school(
        service, fake_wecom):
    number, reply = await report(service, text="上报 化学实验室危化品混放，无专柜 @实验楼二楼",
                                 level="重大", area="危险化学品")
    assert "挂牌督办" in reply
    for user in ("demo-principal", "cd-leader", "cd-liaison", "demo-bureau"):
        [card] = await pushes_to(fake_wecom, user, 1)
        assert card.body["main_title"]["title"] == f"【重大隐患】{number}"
        assert card.body["button_list"][0]["key"] == f"hz:open:{number}"
    assert not fake_wecom.pushes_to("cx-leader")  # another township hears nothing
    assert not fake_wecom.pushes_to("demo-liaison")  # the reporter is not alerted about it

    await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    await say(service, "demo-liaison", f"整改完成 {number}")
    done = await say(service, "demo-liaison", "跳过")
    assert "3 位负责人" in done  # cd-leader, cd-liaison (safety officer), demo-bureau
    assert "不能对隐患" in await say(service, "demo-principal", f"复查 {number} 通过")
    assert "复查通过，已销号" in await say(service, "cd-leader", f"复查 {number} 通过")

    card = fake_wecom.pushes_to("demo-bureau")[0]
    await service.wecom.card_click("demo-bureau", f"hz:open:{number}", card.task_id,
                                   card.response_code)
    details = await pushes_to(fake_wecom, "demo-bureau", 3)
    assert any("处理记录" in text_of(p) and number in text_of(p) for p in details)


async def test_a_number_from_another_unit_gives_no_hint_that_it_exists(service):
    number, _ = await report(service)
    not_found = await say(service, "cxzx-liaison", f"隐患 {number}")
    unknown = await say(service, "cxzx-liaison", "隐患 YH2026-999999")
    assert not_found.replace(number, "X") == unknown.replace("YH2026-999999", "X")
    assert "没有找到" in await say(service, "cx-leader", f"整改 {number} {PLAN}")
    assert number in await say(service, "cd-leader", f"隐患 {number}")      # the township
    assert number in await say(service, "demo-bureau", f"隐患 {number}")    # the bureau


@pytest.mark.parametrize("who, allowed", [
    ("demo-liaison", False), ("demo-duty", False), ("demo-principal", True),
    ("cdsy-deputy", True), ("cd-leader", True), ("demo-bureau", True),
    ("cxzx-liaison", False), ("cx-leader", False),
])
async def test_who_may_review_a_general_hazard(service, who, allowed):
    number, _ = await report(service)
    await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    await say(service, "demo-liaison", f"整改完成 {number}")
    await say(service, "demo-liaison", "跳过")
    reply = await say(service, who, f"复查 {number} 通过")
    assert ("已销号" in reply) is allowed, reply


async def test_illegal_moves_and_bad_input_change_nothing(service):
    number, _ = await report(service)
    assert "没有整改方案" in await say(service, "demo-liaison", f"整改完成 {number}")
    assert "不能进行这一步" in await say(service, "demo-principal", f"复查 {number} 通过")
    assert "编号" in await say(service, "demo-liaison", "整改")
    past = await say(service, "demo-liaison", f"整改 {number} 时限:2020-01-01")
    assert "不能早于今天" in past
    assert "没看懂" in await say(service, "demo-liaison", "下个猴年")
    assert "不存在" in await say(service, "demo-liaison", "2月30日")
    await say(service, "demo-liaison", "取消")
    # the plan asks for what is missing, one element at a time, and saves only when complete
    assert "责任部门" in await say(service, "demo-liaison", f"整改 {number}")
    assert "责任人" in await say(service, "demo-liaison", "总务处")
    assert "治理措施" in await say(service, "demo-liaison", "李校长")
    assert "资金" in await say(service, "demo-liaison", "清理")
    assert "完成时限" in await say(service, "demo-liaison", "无需资金")
    assert "预案" in await say(service, "demo-liaison", "下周五")
    details = await say(service, "demo-principal", f"隐患 {number}")
    assert "待制定整改方案" in details  # nothing saved yet
    assert "你可以使用" in await say(service, "demo-liaison", "帮助")  # help keeps the form
    saved = await say(service, "demo-liaison", "设置警示标志")
    assert "整改方案已记录" in saved and "已通知责任人 李校长" in saved
    # the principal rectifies; the principal may not review their own rectification
    await say(service, "demo-principal", f"整改完成 {number}")
    await say(service, "demo-principal", "跳过")
    assert "不能由你自己复查" in await say(service, "demo-principal", f"复查 {number} 通过")


async def test_a_major_deadline_moves_only_with_approval_from_above(service, fake_wecom):
    number, _ = await report(service, text="上报 教学楼安全出口锁闭 @教学楼一楼", level="重大",
                             area="消防")
    await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    asked = await say(service, "demo-liaison", f"延期 {number} 30天后 需要更换门禁系统")
    assert "等待 3 位上级负责人审批" in asked
    pushed = await pushes_to(fake_wecom, "demo-bureau", 2)  # the alert card and the request
    assert any("延期申请" in text_of(p) for p in pushed)  # pushes may arrive in either order
    assert "不能对隐患" in await say(service, "demo-principal", f"批准延期 {number}")
    assert "已批准" in await say(service, "demo-bureau", f"批准延期 {number}")
    assert "没有待审批的延期申请" in await say(service, "demo-bureau", f"批准延期 {number}")
    assert "新的完成时限" in text_of((await pushes_to(fake_wecom, "demo-liaison", 1))[-1])


async def test_a_leader_reopens_a_closed_hazard(service):
    number, _ = await report(service)
    await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    await say(service, "demo-liaison", f"整改完成 {number}")
    await say(service, "demo-liaison", "跳过")
    await say(service, "demo-principal", f"复查 {number} 通过")
    assert "不能对隐患" in await say(service, "demo-liaison", f"重新打开 {number} 又堵了")
    assert "已重新打开" in await say(service, "demo-principal", f"重新打开 {number} 又堵了")
    assert "整改中" in await say(service, "demo-principal", f"隐患 {number}")


async def test_the_ledger_shows_a_school_its_own_and_the_bureau_the_district(service):
    mine, _ = await report(service)
    theirs, _ = await report(service, user="cxzx-liaison", text="上报 操场围墙开裂 @操场北侧",
                             area="校舍")
    own = await say(service, "demo-liaison", "台账")
    assert mine in own and theirs not in own
    district = await say(service, "demo-bureau", "台账")
    assert mine in district and theirs in district and "城西中学" in district
    assert "没有逾期" in await say(service, "demo-liaison", "逾期")
