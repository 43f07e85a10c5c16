"""Reminder sweeps with a moved clock: overdue escalation in working days across 调休,
quiet hours, the daily digest and snoozes, downtime, and two instances."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.config import RemindersConfig
from bot.render import Renderer
from bot.workcal import load_calendar
from models import digest, hazard_flow, outbox
from models.base import as_utc
from models.digest import DigestItem
from models.hazard import Level
from models.org import get_identity
from reminders import SWEEPS, prune
from reminders.pusher import Push, Pusher
from reminders.quiet import release_at
from reminders.scheduler import sweep_minutes
from reminders.sweep import Sweeper

TZ = ZoneInfo("Asia/Shanghai")
QUIET = "22:00-07:00"


def at(y, m, d, hh=8, mm=5):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def make_sweeper(db, clock):
    return Sweeper(db=db, clock=clock, tz=TZ, calendar=load_calendar(),
                   pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET),
                   settings=RemindersConfig(), quiet_hours=QUIET, areas={"fire": "消防安全"},
                   sweeps=SWEEPS)


def file_hazard(db, *, deadline: date, level=Level.GENERAL, when: datetime,
                responsible_userid="demo-duty", description="消防通道堵塞"):
    who = db.call(get_identity, userid="demo-liaison")

    def tx(session):
        hazard = hazard_flow.create(session=session, unit_id=who.unit_id, reporter=who,
                                    description=description, location="三楼", area="fire",
                                    level=level, now=when, year=when.year, photo_ids=[])
        hazard_flow.set_plan(session=session, hazard=hazard, actor=who, now=when,
                             today=deadline - timedelta(days=30), plan=hazard_flow.Plan(
                                 department="总务处", responsible="孙值班", measures="清理",
                                 funds="无", deadline=deadline, contingency="警示",
                                 responsible_userid=responsible_userid))
        return hazard.number
    return db.call(tx)


def outbox_rows(db, prefix=""):
    return db.call(lambda session: [r for r in session.exec(
        select(outbox.OutboxMessage).order_by(outbox.OutboxMessage.id)).all()
        if r.key.startswith(prefix)])


def digest_items(db):
    return db.call(lambda session: list(session.exec(select(DigestItem)
                                                     .order_by(DigestItem.id)).all()))


@pytest.mark.parametrize("moment, expected", [
    (at(2026, 11, 23, 23, 0), at(2026, 11, 24, 7, 3)),
    (at(2026, 11, 24, 6, 59), at(2026, 11, 24, 7, 3)),
    (at(2026, 11, 24, 12, 0), None),
    (at(2026, 11, 24, 22, 0), at(2026, 11, 25, 7, 3)),
])
def test_quiet_hours_hold_routine_pushes_until_just_after_seven(moment, expected):
    assert release_at(moment, TZ, QUIET) == expected


def test_sweeps_never_run_on_the_hour_or_half_hour():
    assert sweep_minutes(5) == "2,7,12,17,22,27,32,37,42,47,52,57"
    assert "0" not in sweep_minutes(1).split(",") and "30" not in sweep_minutes(1).split(",")
    assert sweep_minutes(30) == "2,32"


async def test_overdue_escalates_by_working_days_across_an_adjusted_weekend(demo):
    # Deadline Friday 2025-09-26. National Day 2025: Sun 9-28 is a working day, 10-1..10-8
    # are off, Sat 10-11 is a working day. Working days overdue: 9-28=1, 9-29=2, 9-30=3,
    # 10-9=4, 10-10=5, 10-11=6, 10-13=7.
    clock = FakeClock(at(2025, 9, 20))
    number = file_hazard(demo, deadline=date(2025, 9, 26), when=clock.now())
    sweeper = make_sweeper(demo, clock)
    principal_on = township_on = None
    day = date(2025, 9, 24)
    while day <= date(2025, 10, 14):
        clock.set(at(day.year, day.month, day.day))
        await sweeper.run_once()
        if principal_on is None and outbox_rows(demo, "overdue-principal:"):
            principal_on = day
        if township_on is None and outbox_rows(demo, "overdue-township:"):
            township_on = day
        day += timedelta(days=1)
    assert (principal_on, township_on) == (date(2025, 9, 30), date(2025, 10, 13))
    assert {r.recipient for r in outbox_rows(demo, "overdue-principal:")} == {"demo-principal"}
    assert {r.recipient for r in outbox_rows(demo, "overdue-township:")} == {
        "cd-leader", "cd-liaison", "demo-bureau"}
    texts = [r.payload["content"] for r in outbox_rows(demo, "digest:demo-duty:")]
    assert len(texts) == 21  # one digest a day for the responsible person, every day
    assert "2 天后" in texts[0] and "今天到整改时限" in texts[2] and "逾期 1 天" in texts[3]
    assert all(number in t for t in texts)


async def test_a_major_overdue_hazard_alerts_everyone_at_once_even_at_night(demo):
    clock = FakeClock(at(2026, 11, 20))
    file_hazard(demo, deadline=date(2026, 11, 23), level=Level.MAJOR, when=clock.now())
    clock.set(at(2026, 11, 24, 0, 12))  # just after midnight: quiet hours
    await make_sweeper(demo, clock).run_once()
    alerts = outbox_rows(demo, "overdue-major:")
    assert {r.recipient for r in alerts} == {"demo-principal", "cd-leader", "cd-liaison",
                                             "demo-bureau"}
    assert all(r.urgent and as_utc(r.next_attempt_at) <= clock.now() for r in alerts)
    assert not digest_items(demo)  # routine reminders wait for the morning


async def test_routine_reminders_are_one_digest_oldest_first_and_a_snooze_holds_one_back(
        demo):
    clock = FakeClock(at(2026, 11, 1))
    numbers = [file_hazard(demo, deadline=date(2026, 11, d), when=clock.now(),
                           description=f"隐患{d}") for d in (10, 12, 14)]
    clock.set(at(2026, 11, 20, 8, 0))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    [first] = outbox_rows(demo, "digest:demo-duty:")
    text = first.payload["content"]
    assert text.index(numbers[0]) < text.index(numbers[1]) < text.index(numbers[2])
    assert set((await sweeper.run_once()).values()) == {0}  # same day: nothing twice

    demo.call(digest.snooze, userid="demo-duty", subject=numbers[1], until=date(2026, 11, 23))
    clock.set(at(2026, 11, 21, 8, 0))
    await sweeper.run_once()
    second = outbox_rows(demo, "digest:demo-duty:2026-11-21")[0].payload["content"]
    assert numbers[0] in second and numbers[1] not in second and numbers[2] in second


async def test_a_day_of_downtime_then_restart_catches_up_once(demo):
    clock = FakeClock(at(2026, 11, 1))
    file_hazard(demo, deadline=date(2026, 11, 10), when=clock.now())
    sweeper = make_sweeper(demo, clock)
    clock.set(at(2026, 11, 20, 9, 0))
    await sweeper.run_once()
    clock.set(at(2026, 11, 22, 10, 44))  # down all of the 21st, back on the 22nd
    first, again = await sweeper.run_once(), await sweeper.run_once()
    assert first["digest"] == 1 and set(again.values()) == {0}
    days = sorted(r.key.split(":")[2] for r in outbox_rows(demo, "digest:demo-duty:"))
    assert days == ["2026-11-20", "2026-11-22"]


async def test_two_instances_sweeping_at_once_send_nothing_twice(demo):
    clock = FakeClock(at(2026, 11, 1))
    file_hazard(demo, deadline=date(2026, 11, 5), when=clock.now())
    clock.set(at(2026, 11, 20, 9, 0))
    one, two = make_sweeper(demo, clock), make_sweeper(demo, clock)
    await asyncio.gather(one.run_once(), two.run_once())
    keys = [r.key for r in outbox_rows(demo)]
    assert len(keys) == len(set(keys))
    assert len(outbox_rows(demo, "digest:demo-duty:")) == 1


async def test_snooze_through_the_door(service, demo):
    from tests.test_hazard_loop import report, say
    number, _ = await report(service)
    assert "之前不再" in await say(service, "demo-liaison", f"稍后 {number} 3天")
    assert "稍后 YH2026-000123 3天" in await say(service, "demo-liaison", f"稍后 {number}")
    assert "没有找到" in await say(service, "cxzx-liaison", f"稍后 {number} 3天")
    assert demo.call(digest.snoozed, userid="demo-liaison", subject=number,
                     today=datetime.now(TZ).date())


async def test_many_escalations_at_once_reach_each_person_as_one_list(demo):
    # a first deployment: four hazards long overdue at once. Each supervisor gets one list,
    # each hazard keeps its key (marked merged), and nothing comes twice.
    clock = FakeClock(at(2026, 10, 1))
    numbers = [file_hazard(demo, deadline=date(2026, 10, 9), when=clock.now(),
                           description=f"隐患{i}") for i in range(4)]
    clock.set(at(2026, 11, 2, 9, 0))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    lists = outbox_rows(demo, "overdue-escalations:")
    assert {r.recipient for r in lists} == {"demo-principal", "cd-leader", "cd-liaison",
                                            "demo-bureau"}
    assert all(r.status == outbox.PENDING and not r.urgent for r in lists)
    text = next(r for r in lists if r.recipient == "demo-bureau").payload["content"]
    assert "以下 4 项隐患已逾期" in text and all(n in text for n in numbers)
    merged = outbox_rows(demo, "overdue-township:")
    assert len(merged) == 4 * 3 and {r.status for r in merged} == {outbox.MERGED}
    assert set((await sweeper.run_once()).values()) == {0}
    # a single new one later goes on its own, as before
    file_hazard(demo, deadline=date(2026, 10, 20), when=at(2026, 10, 2), description="隐患5")
    clock.set(at(2026, 11, 3, 9, 0))
    await sweeper.run_once()
    assert len(outbox_rows(demo, "overdue-escalations:")) == 4
    fresh = [r for r in outbox_rows(demo, "overdue-principal:") if r.status == outbox.PENDING]
    assert len(fresh) == 1 and "隐患5" in fresh[0].payload["content"]


def test_push_all_renders_each_text_once_and_inserts_in_bulk(demo):
    renders = []

    class Counting(Renderer):
        def render(self, name, /, **data):
            renders.append(name)
            return super().render(name, **data)

    pusher = Pusher(renderer=Counting(TZ), tz=TZ, quiet_hours=QUIET)
    now = at(2026, 11, 2, 9, 0)
    item = {"id": 1, "name": "自查报告", "month": "", "due": date(2026, 11, 5), "note": ""}
    pushes = [Push("routine", f"campaign:1:{u}:3", [f"user-{u}"], "campaign/reminder_item.txt.j2",
                   {"days_left": 3, "campaign": "专项行动", "item": item}) for u in range(50)]
    pushes.append(Push("alert", "a-key", ["demo-bureau", "cd-leader"],
                       "reminders/overdue_escalation.txt.j2",
                       {"who": "major", "unit": "城东实验小学", "number": "YH2026-000001",
                        "deadline": date(2026, 11, 1), "description": "消防通道堵塞",
                        "location": "三楼", "days_over": 1, "responsible": "孙值班"}))
    added = demo.call(lambda session: pusher.push_all(session=session, pushes=pushes, now=now))
    again = demo.call(lambda session: pusher.push_all(session=session, pushes=pushes, now=now))
    assert (added, again) == (52, 0)
    assert renders.count("campaign/reminder_item.txt.j2") == 2  # once per call
    assert len(digest_items(demo)) == 50
    alerts = outbox_rows(demo, "a-key:")
    assert {r.recipient for r in alerts} == {"demo-bureau", "cd-leader"}
    assert all(r.urgent and r.payload["content"] for r in alerts)


async def test_the_night_prunes_what_went_out_long_ago_and_keeps_the_rest(demo):
    now = at(2026, 11, 20, 2, 0)  # quiet hours
    old, recent = now - timedelta(days=200), now - timedelta(days=10)

    def seed(session):
        rows = {"sent-old": (outbox.SENT, old), "sent-recent": (outbox.SENT, recent),
                "failed-old": (outbox.FAILED, old), "pending-old": (outbox.PENDING, old),
                "overdue-township:1:2026-06-01:u": (outbox.SENT, old)}
        for key, (status, when) in rows.items():
            outbox.enqueue(session=session, key=key, recipient="u", msgtype="text",
                           payload={"content": key}, now=when)
            row = session.exec(select(outbox.OutboxMessage)
                               .where(outbox.OutboxMessage.key == key)).one()
            row.status, row.sent_at = status, (when if status == outbox.SENT else None)
        for key, when, sent in (("item-old", old, old), ("item-dropped", old, digest.DROPPED),
                                ("item-unsent", old, None), ("item-recent", recent, recent)):
            digest.add_item(session=session, key=key, userid="u", subject="", text=key, now=when)
            item = session.exec(select(DigestItem).where(DigestItem.key == key)).one()
            item.sent_at = sent
    demo.call(seed)
    prune_only = Sweeper(db=demo, clock=FakeClock(now.replace(hour=12)), tz=TZ,
                         calendar=load_calendar(),
                         pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET),
                         settings=RemindersConfig(), quiet_hours=QUIET, areas={},
                         sweeps=[("prune", prune.sweep)])
    await prune_only.run_once()  # daytime: nothing
    assert len(outbox_rows(demo)) == 5
    prune_only.clock.set(now)
    assert await prune_only.run_once() == {"prune": 0}
    assert {r.key for r in outbox_rows(demo)} == {
        "sent-recent", "failed-old", "pending-old", "overdue-township:1:2026-06-01:u"}
    assert {i.key for i in digest_items(demo)} == {"item-unsent", "item-recent"}
