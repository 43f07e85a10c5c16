"""The monthly-update sweep with a moved clock: liaisons of units that have not submitted are
reminded on the 1st, two days before and on the due day; the chain's leaders get the list of
missing units the day after; the month locks after its late window."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.clock import FakeClock
from bot.config import MonthlyConfig, RemindersConfig
from bot.render import Renderer
from bot.workcal import load_calendar
from models import monthly as mo
from models import outbox
from models.digest import DigestItem
from models.org import Person, unit_by_code
from reminders import SWEEPS
from reminders import monthly as monthly_sweep
from reminders.pusher import Pusher
from reminders.sweep import Sweeper
from tests.test_reminders import outbox_rows

TZ = ZoneInfo("Asia/Shanghai")
QUIET = "22:00-07:00"
MISSING = ["城东镇中心校", "城西镇中心校", "城东中心幼儿园", "城西中学", "城西幼儿园"]


def at(month, day, hh=8, mm=5, year=2026):
    return datetime(year, month, day, hh, mm, tzinfo=TZ)


def make_sweeper(db, clock, *, sweeps=(("monthly", monthly_sweep.sweep),), **monthly):
    return Sweeper(db=db, clock=clock, tz=TZ, calendar=load_calendar(),
                   pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET),
                   settings=RemindersConfig(), quiet_hours=QUIET, areas={}, sweeps=sweeps,
                   monthly=MonthlyConfig(**monthly))


def seed_updates(db, month="2026-10"):
    """城东实验小学 submitted, 城东中心幼儿园 has a draft, the rest nothing."""
    def tx(*, session):
        now = at(11, 1, 7, 0)
        school = mo.get_or_create(session=session, month=month, now=now,
                                  unit_id=unit_by_code(session=session, code="CD-SY").id)
        who = session.exec(select(Person).where(Person.userid == "demo-liaison")).one()
        mo.submit(session=session, row=school, person_id=who.id, now=now, today=now.date(),
                  win=mo.window(month, due_day=5, late_days=5))
        mo.get_or_create(session=session, month=month, now=now,
                         unit_id=unit_by_code(session=session, code="CD-YEY").id)
    db.call(tx)


def reminders(db):
    rows = db.call(lambda session: list(session.exec(
        select(DigestItem).where(DigestItem.key.startswith("monthly:"))
        .order_by(DigestItem.id)).all()))
    return rows


async def run_days(sweeper, clock, first: date, last: date, hh=8, mm=5):
    day = first
    while day <= last:
        clock.set(at(day.month, day.day, hh, mm, year=day.year))
        await sweeper.run_once()
        day += timedelta(days=1)


async def test_reminders_on_the_first_two_days_before_and_the_due_day_then_the_list(demo):
    seed_updates(demo)
    clock = FakeClock(at(11, 1, 0, 30))
    sweeper = make_sweeper(demo, clock)
    assert await sweeper.run_once() == {"monthly": 0}  # quiet hours: the morning will do
    await run_days(sweeper, clock, date(2026, 10, 30), date(2026, 11, 12))

    rows = reminders(demo)
    days = sorted({r.key.split(":")[3] for r in rows})
    assert days == ["2026-11-01", "2026-11-03", "2026-11-05"]
    liaisons = {"cd-liaison", "cx-liaison", "cdyey-liaison", "cxzx-liaison", "cxyey-liaison"}
    leaders = {"cd-leader", "cx-leader", "cdyey-leader", "cxzx-leader", "cxyey-leader"}
    assert {r.userid for r in rows if "2026-11-01" in r.key} == liaisons
    assert {r.userid for r in rows if "2026-11-05" in r.key} == liaisons | leaders
    assert "demo-liaison" not in {r.userid for r in rows}  # 城东实验小学 has submitted
    [kindergarten] = [r.text for r in rows if r.userid == "cdyey-liaison"
                      and "2026-11-03" in r.key]
    assert kindergarten.startswith("【月报】城东中心幼儿园2026年10月的安全工作月报将于 2026-11-05（周四） "
                                   "截止（还有 2 天），尚未提交（已有草稿）")
    assert "回复「月报 2026-10」" in kindergarten

    lists = {r.recipient: r.payload["content"] for r in outbox_rows(demo, "monthly-missing:")}
    assert set(lists) == {"cd-leader", "cd-liaison", "cx-leader", "demo-bureau"}
    assert all(r.key.endswith(r.recipient) and r.created_at.day == 6
               for r in outbox_rows(demo, "monthly-missing:"))
    bureau = lists["demo-bureau"]
    assert "以下 5 个单位尚未提交" in bureau
    assert [name for name in MISSING if name in bureau] == MISSING
    assert "城东中心幼儿园（有草稿未提交）" in bureau and "城东实验小学" not in bureau
    assert "以下 1 个单位" in lists["cd-leader"] and "城东中心幼儿园" in lists["cd-leader"]
    assert "城西中学" in lists["cx-leader"] and "城西幼儿园" in lists["cx-leader"]
    assert "2026-11-10（周二） 前仍可补交" in bureau

    locked = demo.call(lambda session: [r.locked for r in session.exec(
        select(mo.MonthlyUpdate)).all()])
    assert locked == [True, True]  # the sweep of 11-11 locked the month


async def test_a_service_down_on_the_day_after_catches_up_once_and_only_for_three_days(demo):
    clock = FakeClock(at(11, 7, 9))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    await sweeper.run_once()
    assert len(outbox_rows(demo, "monthly-missing:")) == 4  # once each
    clean = FakeClock(at(11, 9, 9))  # 4 days late: too late for a list
    demo.call(lambda session: [session.delete(r) for r in session.exec(
        select(outbox.OutboxMessage)).all()])
    await make_sweeper(demo, clean).run_once()
    assert outbox_rows(demo, "monthly-missing:") == []


async def test_the_due_day_comes_from_the_config(demo):
    clock = FakeClock(at(11, 1))
    sweeper = make_sweeper(demo, clock, due_day=10, late_days=2)
    await run_days(sweeper, clock, date(2026, 11, 1), date(2026, 11, 13))
    assert sorted({r.key.split(":")[3] for r in reminders(demo)}) == [
        "2026-11-01", "2026-11-08", "2026-11-10"]
    assert {r.created_at.day for r in outbox_rows(demo, "monthly-missing:")} == {11}


async def test_the_reminder_reaches_the_morning_digest_with_the_others(demo):
    clock = FakeClock(at(11, 1, 8, 5))
    await make_sweeper(demo, clock, sweeps=SWEEPS).run_once()
    [digest] = outbox_rows(demo, "digest:cxzx-liaison:")
    assert "【月报】城西中学2026年10月的安全工作月报将于 2026-11-05（周四） 截止（还有 4 天）" in (
        digest.payload["content"])
    assert [name for name, _ in SWEEPS][-2:] == ["monthly", "digest"]
