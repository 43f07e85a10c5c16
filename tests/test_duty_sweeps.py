"""Duty sweeps with a moved clock over National Day 2025 (10-01..10-08, 中秋节 on 10-06): the
missed check-in ladder, spot-check escalation, holiday coverage, reminders and quiet hours."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.clock import FakeClock
from models import duty, duty_spot
from models.base import as_utc
from models.org import Person, unit_by_code
from tests.test_reminders import make_sweeper, outbox_rows

TZ = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=8, mm=5):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def put_slot(db, *, unit="CD-SY", day=date(2025, 10, 1), kind=duty.Kind.FULL,
             person="demo-duty", leader="cdsy-deputy", now=at(2025, 9, 20, 10, 0),
             hours: tuple[time, time] | None = None) -> int:
    def tx(session):
        unit_id = unit_by_code(session=session, code=unit).id
        people = {p.userid: p.id for p in session.exec(select(Person)).all()}
        start, end = duty.slot_times(day, kind, TZ, *(hours or (None, None)))
        shift, _ = duty.set_slot(session=session, unit_id=unit_id, day=day, kind=kind,
                                 start_at=start, end_at=end, person_id=people[person],
                                 leader_id=people[leader] if leader else None, now=now)
        return shift.id
    return db.call(tx)


def recipients(db, prefix):
    return sorted(r.recipient for r in outbox_rows(db, prefix))


async def test_a_missed_holiday_check_in_climbs_the_ladder_once_per_step_at_its_minute(demo):
    shift_id = put_slot(demo)
    clock = FakeClock(at(2025, 10, 1, 8, 14))
    sweeper = make_sweeper(demo, clock)
    seen = {}
    for minute in range(14, 70):
        clock.set(at(2025, 10, 1, 8, 0) + timedelta(minutes=minute))
        await sweeper.run_once()
        for row in outbox_rows(demo, f"duty-esc:{shift_id}:"):
            seen.setdefault(row.key, minute)
    steps = {key.split(":")[3]: (key.rsplit(":", 1)[1], minute) for key, minute in seen.items()}
    assert steps == {"1": ("demo-duty", 15), "2": ("cdsy-deputy", 30),
                     "3": ("demo-principal", 45)}
    rows = outbox_rows(demo, f"duty-esc:{shift_id}:")
    assert len(rows) == 3 and all(r.urgent for r in rows)
    assert rows[0].msgtype == "template_card"
    assert rows[0].payload["button_list"][0]["key"] == f"duty:checkin:{shift_id}"
    leader_text = rows[1].payload["content"]
    assert "孙值班" in leader_text and "30 分钟未签到" in leader_text and "带班领导" in leader_text
    assert demo.call(lambda session: session.get(duty.Shift, shift_id).escalation) == 3


async def test_a_check_in_stops_the_ladder(demo):
    shift_id = put_slot(demo)
    clock = FakeClock(at(2025, 10, 1, 8, 16))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    assert recipients(demo, f"duty-esc:{shift_id}:") == ["demo-duty"]

    def check_in(session):
        session.get(duty.Shift, shift_id).checked_in_at = clock.now()
    demo.call(check_in)
    for minute in (31, 46, 90):
        clock.set(at(2025, 10, 1, 8, minute % 60) + timedelta(hours=minute // 60))
        await sweeper.run_once()
    assert recipients(demo, f"duty-esc:{shift_id}:") == ["demo-duty"]


async def test_escalations_ignore_quiet_hours_but_the_evening_reminder_waits(demo):
    night = put_slot(demo, day=date(2025, 10, 2), kind=duty.Kind.NIGHT,
                     hours=(time(23, 0), time(7, 0)))
    clock = FakeClock(at(2025, 10, 1, 23, 12))  # the service was down all evening
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    eve = outbox_rows(demo, f"duty-eve:{night}:")
    assert sorted(r.recipient for r in eve) == ["cdsy-deputy", "demo-duty"]
    assert not any(r.urgent for r in eve)
    assert {as_utc(r.next_attempt_at) for r in eve} == {at(2025, 10, 2, 7, 3)}  # held
    clock.set(at(2025, 10, 2, 23, 16))
    await sweeper.run_once()
    [late] = outbox_rows(demo, f"duty-esc:{night}:")
    assert late.urgent and as_utc(late.next_attempt_at) == clock.now()  # at once, at night


async def test_reminders_the_evening_before_and_an_hour_before(demo):
    shift_id = put_slot(demo, day=date(2025, 10, 2), kind=duty.Kind.DAY)
    clock = FakeClock(at(2025, 10, 1, 18, 57))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    assert not outbox_rows(demo, f"duty-eve:{shift_id}:")
    clock.set(at(2025, 10, 1, 19, 2))
    await sweeper.run_once()
    await sweeper.run_once()
    eve = outbox_rows(demo, f"duty-eve:{shift_id}:")
    assert sorted(r.recipient for r in eve) == ["cdsy-deputy", "demo-duty"]
    assert all(as_utc(r.next_attempt_at) == clock.now() for r in eve)
    assert "2025-10-02 08:00 开始值班" in eve[0].payload["content"] + eve[1].payload["content"]
    clock.set(at(2025, 10, 2, 7, 2))
    await sweeper.run_once()
    [card] = outbox_rows(demo, f"duty-hour:{shift_id}:")
    assert card.msgtype == "template_card" and card.recipient == "demo-duty"
    assert "1 小时后" in card.payload["main_title"]["title"]


async def test_a_slot_change_tells_the_people_whose_slot_changed(demo):
    put_slot(demo, day=date(2025, 10, 3))
    clock = FakeClock(at(2025, 9, 21, 10, 2))
    sweeper = make_sweeper(demo, clock)
    await sweeper.run_once()
    assert recipients(demo, "duty-change:") == ["cdsy-deputy", "demo-duty"]
    put_slot(demo, day=date(2025, 10, 3), person="demo-liaison", leader="cdsy-deputy",
             now=clock.now())
    await sweeper.run_once()
    await sweeper.run_once()
    texts = {r.recipient: r.payload["content"] for r in outbox_rows(demo, "duty-change:")[2:]}
    assert set(texts) == {"demo-duty", "demo-liaison"}
    assert "不再担任" in texts["demo-duty"] and "张联络" in texts["demo-duty"]
    assert "你被安排为值班人员" in texts["demo-liaison"]


async def test_an_unanswered_spot_check_goes_to_the_leader_on_duty_then_the_bureau(demo):
    shift_id = put_slot(demo)
    clock = FakeClock(at(2025, 10, 1, 22, 40))

    def ask(session):
        shift = session.get(duty.Shift, shift_id)
        asker = session.exec(select(Person).where(Person.userid == "cd-leader")).one()
        return duty_spot.ask(session=session, unit_id=shift.unit_id, shift_id=shift.id,
                             person_id=shift.person_id, asked_by=asker.id, now=clock.now()).id
    spot_id = demo.call(ask)
    sweeper = make_sweeper(demo, clock)
    for minute, expected in ((44, []), (45, ["cdsy-deputy"]), (49, ["cdsy-deputy"]),
                             (50, ["cd-leader", "cdsy-deputy", "demo-bureau"]),
                             (58, ["cd-leader", "cdsy-deputy", "demo-bureau"])):
        clock.set(at(2025, 10, 1, 22, minute))
        await sweeper.run_once()
        assert recipients(demo, f"duty-spot-esc:{spot_id}:") == expected, minute
    rows = outbox_rows(demo, f"duty-spot-esc:{spot_id}:")
    assert all(r.urgent and as_utc(r.next_attempt_at) <= clock.now() for r in rows)
    assert "超过 10 分钟未确认在岗" in rows[-1].payload["content"]


async def test_an_uncovered_holiday_is_warned_once_and_the_bureau_gets_the_missing_list(demo):
    for day in range(1, 9):  # CD-SY covers every day off of National Day
        put_slot(demo, day=date(2025, 10, day))
    clock = FakeClock(at(2025, 9, 20, 10, 2))
    sweeper = make_sweeper(demo, clock)
    for moment in (at(2025, 9, 20, 10, 2), at(2025, 9, 20, 15, 7), at(2025, 9, 24, 9, 12)):
        clock.set(moment)
        await sweeper.run_once()
    warned = outbox_rows(demo, "duty-holiday:")
    units = {r.key.split(":")[1] for r in warned}
    codes = demo.call(lambda session: {str(unit_by_code(session=session, code=c).id): c
                                       for c in ("CD", "CX", "CD-SY", "CD-YEY", "CX-ZX",
                                                 "CX-YEY")})
    assert {codes[u] for u in units} == {"CD", "CX", "CD-YEY", "CX-ZX", "CX-YEY"}
    assert len(warned) == len({r.key for r in warned})  # once per unit and person
    cx_zx = [r for r in warned if r.recipient == "cxzx-leader"]
    assert len(cx_zx) == 1 and "国庆节、中秋节" in cx_zx[0].payload["content"]
    assert "2025-10-01（周三）" in cx_zx[0].payload["content"]
    assert not outbox_rows(demo, "duty-holiday-list:")

    clock.set(at(2025, 9, 30, 9, 7))  # the day before: the bureau's collection deadline
    await sweeper.run_once()
    [summary] = outbox_rows(demo, "duty-holiday-list:")
    assert summary.recipient == "demo-bureau"
    text = summary.payload["content"]
    assert "6 个单位中，以下 5 个" in text and "城西中学" in text and "城东实验小学" not in text
