"""The Monday-morning weekly digest with a moved clock: once per person per ISO week, on the
first working day of the week, with the numbers of each person's scope."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from bot.clock import FakeClock
from bot.config import MonthlyConfig, RemindersConfig
from bot.render import Renderer
from bot.workcal import load_calendar
from models import outbox
from reminders import SWEEPS
from reminders.pusher import Pusher
from reminders.sweep import Sweeper
from reminders.weekly import sweep as weekly_sweep
from reminders.weekly import week_key
from tests.stats_fixtures import TZ, seed_district
from tests.test_stats import seed_updates

QUIET = "22:00-07:00"
LEADERS = ["cd-leader", "cd-liaison", "cx-leader", "cxyey-leader", "cxzx-leader",
           "cdyey-leader", "demo-bureau", "demo-principal", "jyj-leader"]


def at(y, m, d, hh=8, mm=2):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def sweeper(db, clock):
    return Sweeper(db=db, clock=clock, tz=TZ, calendar=load_calendar(),
                   pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET),
                   settings=RemindersConfig(), quiet_hours=QUIET, areas={"fire": "消防安全"},
                   sweeps=[("weekly", weekly_sweep)], monthly=MonthlyConfig())


def weekly_rows(db):
    return db.call(lambda session: list(session.exec(
        select(outbox.OutboxMessage).where(outbox.OutboxMessage.key.like("weekly:%"))
        .order_by(outbox.OutboxMessage.id)).all()))


def test_the_weekly_sweep_runs_before_the_daily_digest():
    names = [name for name, _ in SWEEPS]
    assert names.index("weekly") < names.index("digest")


async def test_once_per_person_per_week_from_monday_morning(demo):
    clock = FakeClock(at(2026, 11, 23, 7, 12))  # Monday, before the digest time (07:35)
    run = sweeper(demo, clock)
    assert (await run.run_once())["weekly"] == 0
    clock.set(at(2026, 11, 23, 7, 37))
    assert (await run.run_once())["weekly"] == len(LEADERS)
    assert sorted(r.recipient for r in weekly_rows(demo)) == sorted(LEADERS)
    assert {r.key.split(":")[1] for r in weekly_rows(demo)} == {"2026-W48"}
    for moment in (at(2026, 11, 23, 12, 2), at(2026, 11, 24), at(2026, 11, 29, 20, 0)):
        clock.set(moment)
        assert (await run.run_once())["weekly"] == 0
    clock.set(at(2026, 11, 30))  # the next Monday
    assert (await run.run_once())["weekly"] == len(LEADERS)
    assert len(weekly_rows(demo)) == 2 * len(LEADERS)


async def test_a_holiday_monday_moves_it_to_the_first_working_day(demo):
    # National Day 2025: October 1-8 off. The week of Monday 10-06 starts work on Thursday.
    clock = FakeClock(at(2025, 10, 6))
    run = sweeper(demo, clock)
    for day in (6, 7, 8):
        clock.set(at(2025, 10, day, 10, 0))
        assert (await run.run_once())["weekly"] == 0
    clock.set(at(2025, 10, 9))
    assert (await run.run_once())["weekly"] == len(LEADERS)
    assert week_key(clock.now().astimezone(TZ).date()) == "2025-W41"


async def test_a_missed_monday_catches_up_later_that_week_and_two_instances_send_once(demo):
    clock = FakeClock(at(2026, 11, 25, 9, 0))  # down Monday and Tuesday, back on Wednesday
    one, two = sweeper(demo, clock), sweeper(demo, clock)
    first = await one.run_once()
    second = await two.run_once()
    assert (first["weekly"], second["weekly"]) == (len(LEADERS), 0)
    clock.set(at(2026, 11, 25, 23, 30))  # quiet hours: nothing, even if something were due
    assert (await one.run_once())["weekly"] == 0


async def test_each_scope_gets_its_own_numbers(demo):
    demo.call(seed_district)
    demo.call(seed_updates)
    clock = FakeClock(at(2026, 11, 23, 8, 2))
    await sweeper(demo, clock).run_once()
    text = {r.recipient: r.payload["content"] for r in weekly_rows(demo)}
    school = text["demo-principal"]
    assert school.startswith("【每周安全简报】城东实验小学\n上周 2026-11-16 至 2026-11-22：")
    assert "发现隐患 0 条（重大 0），前一周 2 条，↓2" in school
    assert "截至今天：未销号 4 条，逾期 3 条（重大 1）" in school
    assert "逾期最多" not in school
    assert "2026-10 月报（2026-11-05 截止）：按时 1，迟交 0，未交 0" in school
    district = text["demo-bureau"]
    assert "发现隐患 1 条（重大 1），前一周 3 条，↓2" in district
    assert "逾期 6 条（重大 1）" in district
    assert "逾期最多：城东实验小学 3，城西中学 3" in district
    assert "按时 2，迟交 1，未交 3" in district
    assert text["cx-leader"].startswith("【每周安全简报】城西镇中心校")
    assert "逾期最多：城西中学 3" in text["cx-leader"]
