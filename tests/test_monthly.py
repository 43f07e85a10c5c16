"""月报 through the real callback, with the clock moved: the computed table and a correction
kept beside it, the drafted items kept, edited and dropped, the unit's own items with a photo,
the minimum of seed 004, the deadline, late marking and the lock, and a restart mid-way."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import FakeClock
from models import monthly as mo
from models.org import unit_by_code
from tests.conftest import make_config
from tests.test_monthly_stats import TZ, seed_october


def local(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def clock():
    return FakeClock(local(11, 3))


@pytest.fixture
async def svc(start_service, database_url, fake_wecom, demo):
    demo.call(seed_october)
    # the door's replay check would refuse messages stamped with the real time
    return await start_service(config=make_config(database_url, api_base_url=fake_wecom.url,
                                                  replay_window_s=0))


async def say(svc, user, text):
    delivery = await svc.wecom.text(user, text)
    assert delivery.status == 200
    return delivery.reply_text or ""


def update_of(db, code, month="2025-10"):
    def query(*, session):
        unit = unit_by_code(session=session, code=code)
        row = mo.get_update(session=session, unit_id=unit.id, month=month)
        items = mo.items(session=session, update_id=row.id, any_decision=True) if row else []
        return row, items
    return db.call(query)


async def test_the_table_a_correction_the_candidates_and_a_submission(svc, demo):
    table = await say(svc, "demo-liaison", "月报")  # 11-03: last month's, due 11-05
    assert "城东实验小学2025年10月月报 · 统计表" in table
    for line in ("一般隐患：6", "重大隐患：2", "已整改：2", "已销号：1", "逾期：2", "整改率：25.0%",
                 "自查次数：3", "校长带队检查：2", "其他领导检查：1", "值班签到率：66.7%",
                 "交付物已交：1", "交付物应交：2", "截止日期：2025-11-05（周三）"):
        assert line in table

    assert "没看懂要更正" in await say(svc, "demo-liaison", "更正 卫生 3")
    corrected = await say(svc, "demo-liaison", "更正 已整改 3")
    assert "已整改：3（已更正，系统统计 2）" in corrected and "整改率：25.0%" in corrected
    row, _ = update_of(demo, "CD-SY")
    assert row.corrections == {"rectified": 3} and row.computed["rectified"] == 2
    assert mo.reported(row)["rectification_rate"] == 3 / 8  # the rate follows the counts

    assert "工作进展情况" in await say(svc, "demo-liaison", "确认")
    first = await say(svc, "demo-liaison", "本月开展消防安全专项检查，完成隐患整改并复查销号。")
    assert "系统草拟的工作信息（1/9）" in first
    assert "10月1日，校长李校长带队开展安全检查：检查消防设施，未发现问题。" in first
    second = await say(svc, "demo-liaison", "保留")
    assert "已保留" in second and "（2/9）" in second and "发现问题 1 处" in second
    third = await say(svc, "demo-liaison", "修改 10月16日，李校长带队检查实验室危化品管理，发现1处问题，已整改。")
    assert "已按修改后的文字保留" in third and "城东镇中心校王中心来校督查" in third
    assert "已删除" in await say(svc, "demo-liaison", "删除")
    rest = await say(svc, "demo-liaison", "全部保留")
    assert "工作信息 7 条，典型案例 1 个" in rest and "还需要" not in rest

    preview = await say(svc, "demo-liaison", "预览")
    assert "（草稿，截止 2025-11-05（周三））" in preview and "内容已齐全" in preview
    assert "三楼东侧消防通道堵塞（教学楼三楼，一般隐患，YH2025-" in preview
    assert "按「秋季安全攻坚行动」要求报送「工作方案」：已报送" in preview
    done = await say(svc, "demo-liaison", "提交")
    assert "月报已提交：工作信息 7 条，典型案例 1 个" in done and "迟交" not in done

    row, items = update_of(demo, "CD-SY")
    assert (row.status, row.late, row.submitted_at is not None) == ("submitted", False, True)
    assert row.computed["rectified"] == 2 and row.corrections == {"rectified": 3}
    assert [i.kept for i in items] == [True, True, False, True, True, True, True, True, True]
    assert [i.edited for i in items][:3] == [False, True, False]
    assert items[1].text.startswith("10月16日，李校长带队")
    assert items[-1].kind == "case" and items[-1].source.startswith("hazard:")
    assert "没有听懂" in await say(svc, "demo-liaison", "保留")  # the conversation is over


async def test_submit_says_what_is_missing_and_keeps_the_draft(svc, demo, fake_wecom):
    user = "cdyey-liaison"  # the kindergarten: one closed hazard, nothing else
    assert "整改率：100.0%" in await say(svc, user, "月报 2025-10")
    await say(svc, user, "确认")
    candidate = await say(svc, user, "园内开展燃气安全排查并完成整改。")
    assert "系统草拟的典型案例（1/1）" in candidate and "厨房燃气软管老化" in candidate
    listed = await say(svc, user, "删除")
    assert "工作信息 0 条，典型案例 0 个" in listed

    missing = await say(svc, user, "提交")
    assert "月报还不能提交" in missing and "工作信息还差 3 条" in missing
    assert "还没有典型案例" in missing and "已保存为草稿" in missing
    for n in (1, 2):
        assert "已添加工作信息" in await say(svc, user, f"信息 第{n}周开展晨检和安全巡查。")
    assert "已取消" in await say(svc, user, "取消")
    row, _ = update_of(demo, "CD-YEY")
    assert row.status == "draft" and row.progress == "园内开展燃气安全排查并完成整改。"

    assert "统计表" in await say(svc, user, "月报")  # resumes: nothing was lost
    kept = await say(svc, user, "确认")
    assert "园内开展燃气安全排查" in kept
    shown = await say(svc, user, "保留")  # the progress text stays; no candidate is left
    assert "工作信息 2 条，典型案例 0 个" in shown and "工作信息还差 1 条" in shown
    assert "已添加典型案例" in await say(svc, user, "案例 厨房燃气软管老化，已更换并加装报警器。")
    media = fake_wecom.add_media(b"\xff\xd8case", "image/jpeg", "case.jpg")
    photo = (await svc.wecom.image(user, media)).reply_text
    assert "已添加照片（这一条共 1 张）" in photo
    still = await say(svc, user, "提交")
    assert "工作信息还差 1 条" in still and "典型案例" not in still.split("还需要")[-1]
    assert "没有这一条" in await say(svc, user, "删除 信息9")
    await say(svc, user, "信息 组织教职工消防演练一次。")
    assert "月报已提交" in await say(svc, user, "提交")

    row, items = update_of(demo, "CD-YEY")
    assert row.status == "submitted"
    own = [i for i in items if i.source == "own"]
    assert [(i.kind, i.kept, len(i.photo_ids)) for i in own] == [
        ("work_info", True, 0), ("work_info", True, 0), ("work_info", True, 0),
        ("case", True, 1)]


async def test_the_deadline_late_marking_and_the_lock(svc, demo, clock):
    # submitted on time, then edited before the due day: back to draft until resubmitted
    await _fill(svc, "cxzx-liaison")
    assert "月报已提交" in await say(svc, "cxzx-liaison", "提交")
    clock.set(local(11, 5, 18))
    shown = await say(svc, "cxzx-liaison", "月报")
    assert "已于 2025-11-03 10:00 提交" in shown and "回复「修改」" in shown
    assert "保持已提交" in await say(svc, "cxzx-liaison", "好的")
    await say(svc, "cxzx-liaison", "月报")
    assert "月报已退回草稿" in await say(svc, "cxzx-liaison", "修改")
    assert update_of(demo, "CX-ZX")[0].status == "draft"
    assert "月报已提交" in await say(svc, "cxzx-liaison", "提交")
    assert update_of(demo, "CX-ZX")[0].late is False

    # after the due day: a submitted update is final, an unsubmitted one is taken as late
    clock.set(local(11, 6, 9))
    final = await say(svc, "cxzx-liaison", "月报 2025-10")
    assert "已过截止日期（2025-11-05（周三）），已提交的月报不能再修改" in final
    table = await say(svc, "cxyey-liaison", "月报")  # not submitted: still last month's
    assert "2025年10月" in table
    await _fill(svc, "cxyey-liaison", started=True)
    late = await say(svc, "cxyey-liaison", "提交")
    assert "记为迟交" in late
    assert update_of(demo, "CX-YEY")[0].late is True

    # after the lock day nothing changes; 月报 alone now means this month
    clock.set(local(11, 11, 9))
    assert "已锁定" in await say(svc, "cdyey-liaison", "月报 2025-10")
    november = await say(svc, "cdyey-liaison", "月报")
    assert "2025年11月月报 · 统计表" in november
    await _fill(svc, "cdyey-liaison", started=True)
    assert "2025-11-30（周日） 起可以提交" in await say(svc, "cdyey-liaison", "提交")
    assert "还没有开始" in await say(svc, "cdyey-liaison", "月报 2025-12")


async def _fill(svc, user, started=False):
    if not started:
        await say(svc, user, "月报")
    await say(svc, user, "确认")
    await say(svc, user, "本月开展安全隐患排查整治工作。")
    await say(svc, user, "全部保留")
    for n in (1, 2, 3):
        await say(svc, user, f"信息 第{n}条工作信息：开展安全检查。")
    await say(svc, user, "案例 发现并整改消防通道堵塞问题。")


async def test_who_may_fill_it_and_a_restart_mid_way(start_service, svc, database_url,
                                                     fake_wecom):
    assert "不能使用「月报」" in await say(svc, "demo-duty", "月报")
    assert "没看懂月份" in await say(svc, "demo-liaison", "月报 上上月")
    await say(svc, "demo-principal", "月报")
    await say(svc, "demo-principal", "确认")
    assert "（1/9）" in await say(svc, "demo-principal", "本月开展安全隐患排查整治工作。")
    await svc.server.close()
    second = await start_service(config=make_config(database_url, api_base_url=fake_wecom.url,
                                                    replay_window_s=0))
    shown = await say(second, "demo-principal", "保留")  # the state was in the database
    assert "已保留" in shown and "（2/9）" in shown
