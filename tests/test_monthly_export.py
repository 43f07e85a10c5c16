"""The monthly progress table (seed 004 附件 进展情况): `safebot export monthly` writes the XLSX,
checked cell by cell; a leader's `导出月报` answers at once and the file arrives as a push."""
from __future__ import annotations

import asyncio
import io
from datetime import date

from openpyxl import load_workbook
from sqlmodel import select

from bot.cli import main
from models import monthly as mo
from models.org import Person, unit_by_code
from models.stats import unit_stats
from tests.test_hazard_loop import say
from tests.test_ledger_export import config_file, file_push
from tests.test_monthly_stats import TZ, at, seed_october

HEADERS = ["单位", "排查隐患数（一般）", "排查隐患数（重大）", "已整改", "已销号", "逾期", "整改率",
           "自查次数", "校长带队检查", "其他领导检查", "值班签到率", "交付物（已交）", "交付物（应交）",
           "月报状态", "更正说明（系统统计值）"]
ITEM_HEADERS = ["单位", "类别", "序号", "内容", "照片（张）", "来源", "月报状态"]
WIN = mo.window("2025-10", due_day=5, late_days=5)


def seed_updates(session):
    """城东实验小学 submitted on time with a correction, 城西幼儿园 late, 城东中心幼儿园 a draft."""
    def update(code, userid, *, submitted_on=None, progress="", items=(), corrections=None):
        unit = unit_by_code(session=session, code=code).id
        now = at(11, 3)
        row = mo.get_or_create(session=session, unit_id=unit, month="2025-10", now=now)
        stats = unit_stats(session=session, unit_ids=[unit], start=WIN.first, end=WIN.last,
                           tz=TZ, today=date(2025, 11, 3))[unit]
        mo.set_computed(session=session, row=row, stats=stats, now=now)
        for field, value in (corrections or {}).items():
            mo.set_correction(session=session, row=row, field=field, value=value, now=now)
        row.progress = progress
        mo.add_candidates(session=session, update_id=row.id, candidates=[
            ("work_info", "inspection:1", "10月1日，校长李校长带队开展安全检查。", []),
            ("case", "hazard:3", "三楼东侧消防通道堵塞，已整改销号。", [1, 2])])
        drafted = mo.items(session=session, update_id=row.id, kept=None)
        mo.decide(session=session, item_id=drafted[0].id, kept=False)
        mo.decide(session=session, item_id=drafted[1].id, kept=True, text="三楼东侧消防通道堵塞：清理杂物，复查销号。")
        for kind, text, photos in items:
            mo.add_item(session=session, update_id=row.id, kind=kind, text=text, photo_ids=photos)
        if submitted_on:
            who = session.exec(select(Person).where(Person.userid == userid)).one()
            mo.submit(session=session, row=row, person_id=who.id, now=at(11, submitted_on),
                      today=date(2025, 11, submitted_on), win=WIN)
    update("CD-SY", "demo-liaison", submitted_on=4, progress="开展消防安全专项整治。",
           corrections={"rectified": 3},
           items=[("work_info", "组织全校消防演练。", []), ("work_info", "开展实验室危化品清查。", [4])])
    update("CX-YEY", "cxyey-liaison", submitted_on=7, progress="开展园所安全自查。")
    update("CD-YEY", "cdyey-liaison", progress="燃气安全排查（草稿）。")


def export(tmp_path, database_url, *args):
    return main(["export", "monthly", "--config", config_file(tmp_path, database_url), *args])


def row(ws, r):
    return [ws.cell(row=r, column=c).value for c in range(1, ws.max_column + 1)]


def test_a_townships_table_cell_by_cell(demo, database_url, tmp_path, capsys):
    demo.call(seed_october)
    demo.call(seed_updates)
    out = tmp_path / "cd.xlsx"
    assert export(tmp_path, database_url, "--unit", "CD", "--month", "2025-10",
                  "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "城东镇中心校2025年10月" in printed and "3 个单位，已提交 1 个" in printed

    wb = load_workbook(out)
    assert wb.sheetnames == ["进展情况", "工作信息和典型案例"]
    ws = wb["进展情况"]
    assert ws["A1"].value == "城东镇中心校 安全工作月报进展情况（2025年10月）" and ws["A1"].font.b
    assert row(ws, 2) == HEADERS and ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:O6"
    assert row(ws, 3) == ["城东镇中心校", 0, 0, 0, 0, 0, None, 0, 0, 0, None, 0, 0, "未提交", None]
    assert row(ws, 4) == ["城东实验小学", 6, 2, 3, 1, 2, 0.375, 3, 2, 1, 2 / 3, 1, 2, "已提交",
                          "已整改：3（系统 2）"]
    assert row(ws, 5) == ["城东中心幼儿园", 1, 0, 1, 1, 0, 1.0, 0, 0, 0, None, 0, 0, "未提交", None]
    assert row(ws, 6) == ["合计", 7, 2, 4, 2, 2, 4 / 9, 3, 2, 1, 2 / 3, 1, 2, "已提交 1/3", None]
    assert ws["G4"].number_format == "0.0%" and ws["K6"].number_format == "0.0%"
    assert ws.max_row == 6

    items = wb["工作信息和典型案例"]
    assert items["A1"].value == "城东镇中心校 工作信息和典型案例（2025年10月）"
    assert row(items, 2) == ITEM_HEADERS
    assert [row(items, r) for r in range(3, items.max_row + 1)] == [
        ["城东实验小学", "工作进展情况", 1, "开展消防安全专项整治。", 0, "单位填写", "已提交"],
        ["城东实验小学", "工作信息", 1, "组织全校消防演练。", 0, "单位填写", "已提交"],
        ["城东实验小学", "工作信息", 2, "开展实验室危化品清查。", 1, "单位填写", "已提交"],
        ["城东实验小学", "典型案例", 1, "三楼东侧消防通道堵塞：清理杂物，复查销号。", 2, "系统草拟后修改",
         "已提交"],
        ["城东中心幼儿园", "工作进展情况", 1, "燃气安全排查（草稿）。", 0, "单位填写", "未提交"],
        ["城东中心幼儿园", "典型案例", 1, "三楼东侧消防通道堵塞：清理杂物，复查销号。", 2, "系统草拟后修改",
         "未提交"],
    ]
    assert items["D3"].alignment.wrap_text


def test_the_bureau_sees_every_reporting_unit_in_tree_order(demo, database_url, tmp_path):
    demo.call(seed_october)
    demo.call(seed_updates)
    assert export(tmp_path, database_url, "--unit", "JYJ", "--month", "2025-10") == 0
    out = tmp_path / "data" / "exports" / "monthly-JYJ-2025-10.xlsx"
    ws = load_workbook(out)["进展情况"]
    assert [row(ws, r)[0] for r in range(3, ws.max_row + 1)] == [
        "城东镇中心校", "城东实验小学", "城东中心幼儿园", "城西镇中心校", "城西幼儿园", "城西中学", "合计"]
    assert [row(ws, r)[13] for r in range(3, ws.max_row + 1)] == [
        "未提交", "已提交", "未提交", "未提交", "迟交", "未提交", "已提交 2/6"]
    assert row(ws, 8)[11:13] == [0, 2]  # 城西中学 owes the school campaign's two deliverables


def test_a_school_alone_and_bad_input(demo, database_url, tmp_path, capsys):
    demo.call(seed_october)
    out = tmp_path / "school.xlsx"
    assert export(tmp_path, database_url, "--unit", "CD-SY", "--month", "2025年10月",
                  "--out", str(out)) == 0
    ws = load_workbook(out)["进展情况"]
    assert [row(ws, r)[0] for r in (3, 4)] == ["城东实验小学", "合计"] and ws.max_row == 4
    capsys.readouterr()
    assert export(tmp_path, database_url, "--unit", "NOPE", "--month", "2025-10") == 1
    assert "单位编码「NOPE」不存在" in capsys.readouterr().err
    assert export(tmp_path, database_url, "--unit", "CD", "--month", "2025-13") == 2
    assert "月份「2025-13」无法识别" in capsys.readouterr().err


async def test_a_leader_asks_by_message_and_gets_the_file_pushed(service, fake_wecom, demo):
    demo.call(seed_october)
    demo.call(seed_updates)
    assert "不能使用「导出月报」" in await say(service, "demo-liaison", "导出月报")
    assert "没看懂月份" in await say(service, "cd-leader", "导出月报 十月")
    reply = await say(service, "cd-leader", "导出月报 2025-10")
    assert "正在生成城东镇中心校2025年10月的月报进展情况表" in reply
    push = await file_push(fake_wecom, "cd-leader")
    content, _, filename = fake_wecom.media[push.body["media_id"]]
    assert filename == "月报-城东镇中心校-2025-10.xlsx"
    ws = load_workbook(io.BytesIO(content))["进展情况"]
    assert row(ws, 4)[:4] == ["城东实验小学", 6, 2, 3] and row(ws, 6)[13] == "已提交 1/3"
    for _ in range(100):
        texts = [p.body["content"] for p in fake_wecom.pushes_to("cd-leader")
                 if p.msgtype == "text" and "已导出" in p.body["content"]]
        if texts:
            break
        await asyncio.sleep(0.05)
    assert "3 个单位，已提交 1 个，未提交 2 个" in texts[0]
