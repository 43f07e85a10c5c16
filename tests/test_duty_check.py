"""The roster import (all or nothing, bad rows by line) and the nightly check of rosters and
escalation chains, by the sweep and by ``safebot check``."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.clock import FakeClock
from bot.roster_import import RosterImportError, import_roster
from bot.workcal import load_calendar
from models import duty, outbox
from models.org import Person, PersonRole, Role
from tests.test_duty_sweeps import TZ, at, put_slot
from tests.test_reminders import make_sweeper, outbox_rows

HEADER = "单位编码,日期,班次,开始,结束,值班人员,带班领导\n"
GOOD = HEADER + (
    "CD-SY,2025-10-01,24小时,,,孙值班,赵副校长\n"
    "CX-ZX,10月1日,白班,08:30,17:30,林值班,杨校长\n"
    "CX-ZX,2025/10/1,夜班,,,cxzx-duty,\n"
)
BAD = HEADER + (
    "NOPE,2025-10-01,24小时,,,孙值班,赵副校长\n"
    "CD-SY,10月32日,24小时,,,孙值班,赵副校长\n"
    "CD-SY,2025-10-02,早班,,,孙值班,赵副校长\n"
    "CD-SY,2025-10-03,24小时,,,钱值班,赵副校长\n"
    "CX-ZX,2025-10-01,白班,,,林值班,杨校长\n"
    "\n"
    "CX-ZX,2025-10-01,白班,,,林值班,\n"
    "CX-ZX,2025-10-02,夜班,25:00,,林值班,\n"
    "CX-ZX,2025-10-03,夜班,,,,杨校长\n"
    "CX-ZX,2025-09-01,夜班,,,林值班,\n"
    "CX-ZX,2025-10-04,夜班,,,林值班,冯中心\n"
)


def load(db, path: Path, now=at(2025, 9, 20, 10, 0)) -> str:
    return import_roster(db, path, tz=TZ, now=now, calendar=load_calendar())


def shifts(db):
    return db.call(lambda session: list(session.exec(select(duty.Shift)
                                                     .order_by(duty.Shift.id)).all()))


def test_a_good_roster_file_is_imported_and_flagged_and_a_second_import_changes_nothing(
        demo, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(GOOD, encoding="utf-8")
    duty_id = demo.call(lambda session: session.exec(
        select(Person.id).where(Person.userid == "demo-duty")).one())
    demo.call(duty.add_leave, person_id=duty_id, start=date(2025, 10, 1),
              end=date(2025, 10, 2), now=at(2025, 9, 19))
    report = load(demo, path)
    assert "新增 3 班，更新 0 班，无变化 0 班" in report
    assert "⚠ 城东实验小学 2025-10-01（周三） 24小时：孙值班 在请假" in report
    assert "⚠ 城西中学 2025-10-01（周三）（国庆节）没有带班领导的 24 小时值班" in report
    day, night = [s for s in shifts(demo) if s.kind != duty.Kind.FULL]
    assert day.start_at.replace(tzinfo=timezone.utc) == datetime(2025, 10, 1, 8, 30,
                                                                 tzinfo=TZ)
    assert night.end_at.replace(tzinfo=timezone.utc) == datetime(2025, 10, 2, 8, 0, tzinfo=TZ)
    assert night.leader_id is None
    assert "新增 0 班，更新 0 班，无变化 3 班" in load(demo, path)


def test_a_bad_roster_file_names_every_bad_line_and_imports_nothing(demo, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(RosterImportError) as caught:
        load(demo, path)
    report = caught.value.report()
    assert "发现 8 处问题，没有导入任何数据" in report
    for line, words in ((2, "单位编码「NOPE」不存在"), (3, "日期「10月32日」无法识别"),
                        (4, "班次「早班」不正确"), (5, "值班人员「钱值班」不是单位 CD-SY 的人员"),
                        (8, "与第 6 行是同一单位同一天的同一班次"), (9, "开始时间「25:00」不正确"),
                        (10, "「值班人员」不能为空"), (11, "日期「2025-09-01」已经过去")):
        assert f"roster.csv 第 {line} 行：{words}" in report, line
    assert "第 12 行" not in report  # a township leader may lead a school's duty
    assert shifts(demo) == []


def test_an_xlsx_roster_with_date_and_time_cells(demo, tmp_path):
    from openpyxl import Workbook
    book = Workbook()
    sheet = book.active
    sheet.title = "国庆值班"
    sheet.append(["单位编码", "日期", "班次", "开始", "结束", "值班人员", "带班领导"])
    sheet.append(["CD-SY", datetime(2025, 10, 2), "24小时", time(7, 30), time(7, 30), "孙值班",
                  "demo-principal"])
    sheet.append(["CD-SY", datetime(2025, 10, 3), "白班", None, None, "孙值班", "李校长"])
    book.save(tmp_path / "roster.xlsx")
    assert "新增 2 班" in load(demo, tmp_path / "roster.xlsx")
    first = shifts(demo)[0]
    assert first.start_at.replace(tzinfo=timezone.utc) == datetime(2025, 10, 2, 7, 30, tzinfo=TZ)
    sheet.append(["CD-SY", "明年", "白班", None, None, "孙值班", ""])
    book.save(tmp_path / "roster.xlsx")
    with pytest.raises(RosterImportError) as caught:
        load(demo, tmp_path / "roster.xlsx")
    assert "roster.xlsx「国庆值班」第 4 行：日期「明年」无法识别" in caught.value.report()


def test_the_cli_imports_a_roster_and_refuses_a_bad_one(demo, database_url, tmp_path, capsys):
    cfg = tmp_path / "safebot.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "CD-SY,2030-10-01,24小时,,,孙值班,赵副校长\n", encoding="utf-8")
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 0
    assert "新增 1 班" in capsys.readouterr().out
    path.write_text(HEADER + "CD-SY,2030-10-01,24小时,,,无名氏,\n", encoding="utf-8")
    assert main(["roster", "import", str(path), "--config", str(cfg)]) == 1
    assert "第 2 行：值班人员「无名氏」" in capsys.readouterr().err


def seed_misconfiguration(db, now):
    """城西幼儿园 loses its only liaison; 林值班 cannot be reached (invaliduser), 刘园长 neither
    (81013); 李校长 failed once but got a push since."""
    def tx(session):
        liaison = session.exec(select(Person).where(Person.userid == "cxyey-liaison")).one()
        for role in session.exec(select(PersonRole).where(PersonRole.person_id == liaison.id,
                                                          PersonRole.role == Role.LIAISON)):
            session.delete(role)
        for i, (userid, status, error) in enumerate((
                ("cxzx-duty", outbox.FAILED, "recipient unreachable: invaliduser"),
                ("cdyey-leader", outbox.FAILED,
                 "/cgi-bin/message/send: 81013 user & party & tag all invalid"),
                ("demo-principal", outbox.FAILED, "recipient unreachable: invaliduser"),
                ("demo-principal", outbox.SENT, ""))):
            outbox.enqueue(session=session, key=f"t{i}", recipient=userid, msgtype="text",
                           payload={"content": "x"}, now=now)
            row = session.exec(select(outbox.OutboxMessage)
                               .where(outbox.OutboxMessage.key == f"t{i}")).one()
            row.status, row.last_error = status, error
            row.dispatched_at = now.replace(minute=i)
    db.call(tx)


async def test_the_nightly_check_reports_each_misconfigured_unit_once_a_day(demo):
    seed_misconfiguration(demo, at(2025, 9, 24, 9, 0))
    put_slot(demo, leader=None)  # CD-SY on 10-01 (a holiday) without a leader on duty
    clock = FakeClock(at(2025, 9, 24, 20, 55))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    assert not outbox_rows(demo, "duty-check:")
    clock.set(at(2025, 9, 24, 21, 7))
    await sweeper.run_once()
    clock.set(at(2025, 9, 24, 21, 42))
    await sweeper.run_once()
    rows = outbox_rows(demo, "duty-check:")
    assert {r.recipient for r in rows} == {"demo-admin"}
    by_unit = {r.payload["content"].split("】")[1].split("（")[0]: r.payload["content"]
               for r in rows}
    assert len(rows) == len(by_unit)  # one report per unit
    assert "没有已绑定企业微信的联络员" in by_unit["城西幼儿园"]
    assert "林值班（cxzx-duty）收不到安全助手的消息（invaliduser）" in by_unit["城西中学"]
    assert "刘园长（cdyey-leader）收不到安全助手的消息（errcode 81013）" in by_unit["城东中心幼儿园"]
    assert "2025-10-01（周三） 是法定节假日，24小时没有带班领导" in by_unit["城东实验小学"]
    assert "李校长" not in by_unit["城东实验小学"]
    assert "2025-09-27（周六）" in by_unit["城西中学"]  # a weekend with nobody on duty
    clock.set(at(2025, 9, 25, 21, 7))
    await sweeper.run_once()
    assert len(outbox_rows(demo, "duty-check:")) == 2 * len(rows)


def test_safebot_check_prints_the_same_findings(demo, database_url, tmp_path, capsys):
    seed_misconfiguration(demo, at(2025, 9, 24, 9, 0))
    cfg = tmp_path / "safebot.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    assert main(["check", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "值班与上报链路检查" in out and "7 个单位" in out
    assert "城西幼儿园（CX-YEY）\n  · 没有已绑定企业微信的联络员" in out
    assert "林值班（cxzx-duty）收不到安全助手的消息（invaliduser）" in out
