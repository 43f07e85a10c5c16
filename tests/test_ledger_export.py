"""The hazard ledger export (隐患治理清单, seed 004): `safebot export ledger` writes the XLSX,
checked cell by cell; a leader's `导出台账` answers at once and the file arrives as a push."""
from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.dates import DateParseError, parse_any_date
from bot.ledger_xlsx import COLUMNS, sheet_name, write_ledger
from handlers.ledger_export import PeriodError, parse_period
from models import hazard_flow
from models.hazard import Level
from models.org import get_identity
from tests.test_hazard_loop import report, say

TZ = ZoneInfo("Asia/Shanghai")
HEADERS = ["隐患编号", "单位", "领域", "隐患名称", "隐患等级", "隐患位置", "治理措施", "完成时限",
           "复查结果", "责任部门和责任人", "状态", "上报时间", "销号时间"]
SUMMARY_HEADERS = ["单位", "隐患总数", "重大隐患", "已销号", "未销号", "逾期未整改"]


def at(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2025) -> datetime:
    """A local (Asia/Shanghai) wall time, as the UTC instant the service stores."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


def add_hazard(session, *, userid, description, location, area, level, reported, plan=None,
               closed=None, reviewer="demo-principal"):
    """A hazard through models.hazard_flow at a chosen time; its number."""
    who = get_identity(session=session, userid=userid)
    hazard = hazard_flow.create(session=session, unit_id=who.unit_id, reporter=who,
                                description=description, location=location, area=area,
                                level=level, now=reported, year=reported.astimezone(TZ).year,
                                photo_ids=[])
    if plan:
        department, responsible, measures, deadline = plan
        assert hazard_flow.set_plan(
            session=session, hazard=hazard, actor=who, now=reported,
            today=reported.astimezone(TZ).date(),
            plan=hazard_flow.Plan(department=department, responsible=responsible,
                                  measures=measures, funds="无需资金", deadline=deadline,
                                  contingency="设置警示标志")) is None
    if closed:
        assert hazard_flow.mark_rectified(session=session, hazard=hazard, actor=who,
                                          now=closed - timedelta(hours=1), photo_ids=[]) is None
        assert hazard_flow.review(session=session, hazard=hazard, passed=True, reason="",
                                  actor=get_identity(session=session, userid=reviewer),
                                  now=closed) is None
    session.flush()
    return hazard.number


def seed_november(session):
    """Hazards around November 2025 in the demo district; the numbers by name."""
    n = {}
    n["before"] = add_hazard(session, userid="demo-liaison", description="操场围栏松动",
                             location="操场", area="buildings", level=Level.GENERAL,
                             reported=at(10, 31, 23, 59))  # the last minute of October
    n["closed"] = add_hazard(session, userid="demo-liaison", description="三楼东侧消防通道堵塞",
                             location="教学楼三楼", area="fire", level=Level.GENERAL,
                             reported=at(11, 3, 9, 15),
                             plan=("总务处", "孙值班", "清理杂物并张贴禁止堆放标识",
                                   date(2025, 11, 6)),
                             closed=at(11, 6, 10, 0))
    n["major"] = add_hazard(session, userid="demo-liaison", description="化学实验室危化品混放，无专柜",
                            location="实验楼二楼", area="chemicals", level=Level.MAJOR,
                            reported=at(11, 10, 14, 0),
                            plan=("教务处", "李校长", "分类存放，设置危化品专柜",
                                  date(2025, 11, 20)))
    n["last"] = add_hazard(session, userid="cdyey-liaison", description="厨房燃气软管老化",
                           location="幼儿园厨房", area="food", level=Level.GENERAL,
                           reported=at(11, 30, 23, 30))  # UTC 15:30: still November locally
    n["after"] = add_hazard(session, userid="demo-liaison", description="楼梯扶手缺失",
                            location="综合楼", area="buildings", level=Level.GENERAL,
                            reported=at(12, 1, 0, 0))  # UTC: still 30 November
    n["west"] = add_hazard(session, userid="cxzx-liaison", description="校门口缺少减速带",
                           location="校门口", area="traffic", level=Level.GENERAL,
                           reported=at(11, 15))
    return n


def config_file(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n\n[storage]\n'
                    f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return str(path)


def values(ws, row: int) -> list:
    return [ws.cell(row=row, column=c).value for c in range(1, len(HEADERS) + 1)]


def export(tmp_path, database_url, *args):
    return main(["export", "ledger", "--config", config_file(tmp_path, database_url), *args])


def test_a_schools_ledger_is_one_sheet_with_the_seed_columns_cell_by_cell(
        demo, database_url, tmp_path, capsys):
    n = demo.call(seed_november)
    out = tmp_path / "school.xlsx"
    assert export(tmp_path, database_url, "--unit", "CD-SY", "--from", "2025-11-01",
                  "--to", "2025-11-30", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "城东实验小学" in printed and "2 条隐患" in printed and str(out) in printed

    wb = load_workbook(out)
    assert wb.sheetnames == ["城东实验小学"]  # one unit: no 汇总
    ws = wb["城东实验小学"]
    assert ws["A1"].value == "城东实验小学 隐患排查治理台账（2025-11-01 至 2025-11-30）"
    assert ws["A1"].font.b and "A1:M1" in {str(r) for r in ws.merged_cells.ranges}
    assert values(ws, 2) == HEADERS
    assert all(ws.cell(row=2, column=c).font.b for c in range(1, len(HEADERS) + 1))
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:M4"
    assert ws.column_dimensions["D"].width == dict((h, w) for _, h, w in COLUMNS)["隐患名称"]
    assert values(ws, 3) == [n["closed"], "城东实验小学", "消防安全", "三楼东侧消防通道堵塞", "一般",
                             "教学楼三楼", "清理杂物并张贴禁止堆放标识", datetime(2025, 11, 6),
                             "通过", "总务处 / 孙值班", "已销号", datetime(2025, 11, 3, 9, 15),
                             datetime(2025, 11, 6, 10, 0)]
    assert values(ws, 4) == [n["major"], "城东实验小学", "危险化学品", "化学实验室危化品混放，无专柜",
                             "重大", "实验楼二楼", "分类存放，设置危化品专柜",
                             datetime(2025, 11, 20), None, "教务处 / 李校长", "整改中",
                             datetime(2025, 11, 10, 14, 0), None]
    assert ws["H3"].number_format == "yyyy-mm-dd" and ws["H3"].is_date
    assert ws["L3"].number_format == "yyyy-mm-dd hh:mm" and ws["M3"].is_date
    assert ws.max_row == 4  # October's last minute and December's first are left out


def test_a_townships_ledger_has_a_summary_and_one_sheet_per_unit(
        demo, database_url, tmp_path, capsys):
    n = demo.call(seed_november)
    assert export(tmp_path, database_url, "--unit", "CD", "--from", "2025-11-01",
                  "--to", "2025-11-30") == 0
    out = tmp_path / "data" / "exports" / "ledger-CD-2025-11-01-2025-11-30.xlsx"
    assert str(out) in capsys.readouterr().out
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "城东镇中心校", "城东实验小学", "城东中心幼儿园"]

    summary = wb["汇总"]
    assert summary["A1"].value == "城东镇中心校 隐患排查治理台账（2025-11-01 至 2025-11-30）"
    rows = [[c.value for c in row] for row in summary.iter_rows(min_row=2)]
    assert rows == [SUMMARY_HEADERS,
                    ["城东镇中心校", 0, 0, 0, 0, 0],
                    ["城东实验小学", 2, 1, 1, 1, 1],  # the major one is past its 11-20 deadline
                    ["城东中心幼儿园", 1, 0, 0, 1, 0],  # no plan yet: not overdue
                    ["合计", 3, 1, 1, 2, 1]]
    assert summary.freeze_panes == "A3"

    assert wb["城东镇中心校"].max_row == 2  # title and header only
    assert wb["城东镇中心校"]["A1"].value.startswith("城东镇中心校 隐患排查治理台账")
    school = wb["城东实验小学"]
    assert [school.cell(row=r, column=1).value for r in (3, 4)] == [n["closed"], n["major"]]
    kindergarten = wb["城东中心幼儿园"]
    assert kindergarten["A1"].value == "城东中心幼儿园 隐患排查治理台账（2025-11-01 至 2025-11-30）"
    assert values(kindergarten, 3) == [n["last"], "城东中心幼儿园", "食品安全", "厨房燃气软管老化",
                                       "一般", "幼儿园厨房", None, None, None, None, "待制定整改方案",
                                       datetime(2025, 11, 30, 23, 30), None]
    assert n["west"] not in str([c.value for ws in wb for row in ws.iter_rows() for c in row])


def test_the_bureau_sees_every_unit_in_tree_order(demo, database_url, tmp_path):
    demo.call(seed_november)
    out = tmp_path / "bureau.xlsx"
    assert export(tmp_path, database_url, "--unit", "JYJ", "--from", "2025-11-01",
                  "--to", "2025-11-30", "--out", str(out)) == 0
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "示范区教育局", "城东镇中心校", "城东实验小学", "城东中心幼儿园",
                             "城西镇中心校", "城西幼儿园", "城西中学"]
    assert [c.value for c in wb["汇总"][10]] == ["合计", 4, 1, 1, 3, 1]


@pytest.mark.parametrize("start, end, expected", [
    ("2025-11-10", "2025-11-10", ["major"]),
    ("2025-10-31", "2025-11-03", ["before", "closed"]),
    ("2025/11/30", "2025年12月1日", ["after", "last"]),  # school, then kindergarten
    ("2025-12-02", "2025-12-31", []),
])
def test_the_period_is_in_local_days_both_ends_included(demo, database_url, tmp_path, start,
                                                        end, expected):
    n = demo.call(seed_november)
    out = tmp_path / "range.xlsx"
    assert export(tmp_path, database_url, "--unit", "CD", "--from", start, "--to", end,
                  "--out", str(out)) == 0
    wb = load_workbook(out)
    numbers = [row[0].value for name in wb.sheetnames[1:] for row in wb[name].iter_rows(min_row=3)]
    assert numbers == [n[key] for key in expected]


@pytest.mark.parametrize("args, code, words", [
    (["--unit", "NOPE", "--from", "2025-11-01", "--to", "2025-11-30"], 1, "单位编码「NOPE」不存在"),
    (["--unit", "CD", "--from", "2025-13-01", "--to", "2025-11-30"], 2, "--from 的日期「2025-13-01」不存在"),
    (["--unit", "CD", "--from", "2025-11-01", "--to", "last week"], 2, "无法识别"),
    (["--unit", "CD", "--from", "2025-11-30", "--to", "2025-11-01"], 2, "晚于结束日期"),
])
def test_bad_input_is_refused_in_chinese_and_writes_nothing(demo, database_url, tmp_path,
                                                           capsys, args, code, words):
    assert export(tmp_path, database_url, *args) == code
    captured = capsys.readouterr()
    assert words in captured.err and captured.out == ""
    assert not (tmp_path / "data" / "exports").exists()


def test_sheet_names_are_legal_and_unique():
    taken = {"汇总"}
    assert sheet_name("城东[实验]:小学/分校?*\\", taken) == "城东_实验__小学_分校___"
    long = "一" * 40
    assert sheet_name(long, taken) == "一" * 31
    assert sheet_name(long, taken) == "一" * 28 + "(2)"
    assert sheet_name("汇总", taken) == "汇总(2)"
    assert sheet_name("'History'", taken) == "History(2)"
    assert sheet_name("", taken) == "Sheet"


def test_an_empty_ledger_still_has_its_title_and_header(tmp_path):
    out = tmp_path / "empty.xlsx"
    write_ledger(out, {"城东实验小学": []}, title="城东实验小学",
                 period=(date(2026, 1, 1), date(2026, 1, 31)))
    ws = load_workbook(out).active
    assert ws["A1"].value == "城东实验小学 隐患排查治理台账（2026-01-01 至 2026-01-31）"
    assert values(ws, 2) == HEADERS and ws.max_row == 2
    assert [p.name for p in tmp_path.iterdir()] == ["empty.xlsx"]  # no temporary file left


@pytest.mark.parametrize("text, expected", [
    ("", (date(2026, 11, 1), date(2026, 11, 20))),
    ("本月", (date(2026, 11, 1), date(2026, 11, 20))),
    ("上月", (date(2026, 10, 1), date(2026, 10, 31))),
    ("今年", (date(2026, 1, 1), date(2026, 11, 20))),
    ("2026-10-01", (date(2026, 10, 1), date(2026, 11, 20))),
    ("2026-10-01 2026-10-15", (date(2026, 10, 1), date(2026, 10, 15))),
    ("10月1日至10月15日", (date(2026, 10, 1), date(2026, 10, 15))),
    ("２０２６／９／１　到　２０２６／９／３０", (date(2026, 9, 1), date(2026, 9, 30))),
])
def test_the_period_a_leader_types(text, expected):
    assert parse_period(text, today=date(2026, 11, 20)) == expected


@pytest.mark.parametrize("text, reason", [
    ("下个猴年", "unparseable"), ("2026-02-30", "invalid"), ("11月30日 11月1日", "reversed"),
    ("1 2 3", "unparseable"), ("2026-12-01", "reversed"),
])
def test_a_bad_period_says_why(text, reason):
    with pytest.raises(PeriodError) as caught:
        parse_period(text, today=date(2026, 11, 20))
    assert caught.value.reason == reason


def test_parse_any_date_accepts_past_dates_and_leaves_parse_date_alone():
    today = date(2026, 11, 20)
    assert parse_any_date("2020-01-05", today=today) == date(2020, 1, 5)
    assert parse_any_date("11月1日", today=today) == date(2026, 11, 1)
    assert parse_any_date("12-31", today=today) == date(2026, 12, 31)
    assert parse_any_date("昨天", today=today) == date(2026, 11, 19)
    for text, reason in (("3天后", "unparseable"), ("2026-2-29", "invalid"), ("", "unparseable")):
        with pytest.raises(DateParseError) as caught:
            parse_any_date(text, today=today)
        assert caught.value.reason == reason


async def file_push(fake, user, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        files = [p for p in fake.pushes_to(user) if p.msgtype == "file"]
        if files:
            return files[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no file pushed to {user}: {fake.pushes_to(user)}")


async def test_a_leader_asks_by_message_and_gets_the_file_pushed(service, fake_wecom, clock):
    number, _ = await report(service)  # this month, in 城东实验小学
    reply = await say(service, "demo-bureau", "导出台账")
    today = clock.now().astimezone(TZ).date()
    first = today.replace(day=1)
    assert "正在生成示范区教育局的隐患台账" in reply and f"{first} 至 {today}" in reply

    push = await file_push(fake_wecom, "demo-bureau")
    content, _, filename = fake_wecom.media[push.body["media_id"]]
    assert filename == f"台账-示范区教育局-{first}-{today}.xlsx"
    wb = load_workbook(io.BytesIO(content))
    assert wb.sheetnames[:4] == ["汇总", "示范区教育局", "城东镇中心校", "城东实验小学"]
    assert wb["汇总"]["A1"].value == f"示范区教育局 隐患排查治理台账（{first} 至 {today}）"
    assert [c.value for c in wb["汇总"][10]] == ["合计", 1, 0, 0, 1, 0]
    school = wb["城东实验小学"]
    assert values(school, 2) == HEADERS
    assert [school.cell(row=3, column=c).value for c in (1, 4, 5, 11)] == [
        number, "三楼东侧消防通道堵塞", "一般", "待制定整改方案"]

    for _ in range(100):
        texts = [p.body["content"] for p in fake_wecom.pushes_to("demo-bureau")
                 if p.msgtype == "text"]
        if texts:
            break
        await asyncio.sleep(0.05)
    assert "已导出示范区教育局的隐患台账" in texts[0] and "共 1 条隐患" in texts[0]


async def test_an_export_for_a_past_month_by_message(service, fake_wecom, demo):
    n = demo.call(seed_november)
    assert "正在生成" in await say(service, "cd-leader", "导出台账 2025-11-01 2025-11-30")
    push = await file_push(fake_wecom, "cd-leader")
    wb = load_workbook(io.BytesIO(fake_wecom.media[push.body["media_id"]][0]))
    assert [c.value for c in wb["汇总"][6]] == ["合计", 3, 1, 1, 2, 1]
    assert wb["城东实验小学"]["A3"].value == n["closed"]


async def test_who_may_export_and_what_a_bad_period_says(service, fake_wecom):
    assert "不能使用「导出台账」" in await say(service, "demo-liaison", "导出台账")
    assert "不能使用「导出台账」" in await say(service, "demo-duty", "导出台账")
    bad = await say(service, "demo-principal", "导出台账 11月30日 11月1日")
    assert "开始日期不能晚于结束日期" in bad and "用法" in bad
    await asyncio.sleep(0.2)
    assert not [p for p in fake_wecom.pushes if p.msgtype == "file"]


async def test_one_export_at_a_time_per_person_and_a_failure_is_told(service, fake_wecom,
                                                                    monkeypatch):
    import threading

    from handlers import ledger_export

    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(10)
        raise OSError("disk full")
    monkeypatch.setattr(ledger_export, "write_ledger", stuck)
    assert "正在生成" in await say(service, "demo-principal", "导出台账")
    assert "还在生成中" in await say(service, "demo-principal", "导出台账 上月")
    assert "正在生成" in await say(service, "cd-leader", "导出台账")  # someone else may
    release.set()
    for _ in range(200):
        told = [p.body["content"] for p in fake_wecom.pushes_to("demo-principal")]
        if told:
            break
        await asyncio.sleep(0.05)
    assert len(told) == 1 and "没有生成成功" in told[0]
    assert not [p for p in fake_wecom.pushes if p.msgtype == "file"]
