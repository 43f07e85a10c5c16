"""The statistics of the monthly report (models/stats.py): a month of records in the demo
district, counted by hand, including the first and last local minutes of the month; the
figures of every unit come from a fixed handful of queries, however many units there are."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert
from sqlmodel import select

from models import campaign as cp
from models import duty, hazard_flow, inspection, monthly, selfcheck
from models.hazard import Level
from models.org import Person, Unit, get_identity, unit_by_code
from models.stats import UnitStats, unit_stats

TZ = ZoneInfo("Asia/Shanghai")
OCT = (date(2025, 10, 1), date(2025, 10, 31))


def at(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2025) -> datetime:
    """A local (Asia/Shanghai) wall time, as the UTC instant the service stores."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


def add_hazard(session, *, userid="demo-liaison", description="消防通道堵塞", location="教学楼",
               level=Level.GENERAL, reported, deadline=None, rectified=None, closed=None,
               measures="清理杂物", reviewer="demo-principal"):
    """A hazard through models.hazard_flow at chosen times; the Hazard."""
    who = get_identity(session=session, userid=userid)
    hazard = hazard_flow.create(session=session, unit_id=who.unit_id, reporter=who,
                                description=description, location=location, area="fire",
                                level=level, now=reported, year=reported.astimezone(TZ).year,
                                photo_ids=[])
    if deadline:
        assert hazard_flow.set_plan(
            session=session, hazard=hazard, actor=who, now=reported,
            today=reported.astimezone(TZ).date(),
            plan=hazard_flow.Plan(department="总务处", responsible="孙值班", measures=measures,
                                  funds="无", deadline=deadline, contingency="警示")) is None
    if rectified:
        assert hazard_flow.mark_rectified(session=session, hazard=hazard, actor=who,
                                          now=rectified, photo_ids=[]) is None
    if closed:
        assert hazard_flow.review(session=session, hazard=hazard, passed=True, reason="",
                                  actor=get_identity(session=session, userid=reviewer),
                                  now=closed) is None
    session.flush()
    return hazard


def person(session, userid):
    return session.exec(select(Person).where(Person.userid == userid)).one()


def add_run(session, *, userid="demo-liaison", started, finished=None, status="finished",
            area="fire", answers=()):
    who = person(session, userid)
    run = selfcheck.start_run(session=session, unit_id=who.unit_id, person_id=who.id, area=area,
                              now=started)
    for item, answer in answers:
        selfcheck.record_answer(session=session, run_id=run.id, item_id=item, answer=answer,
                                note="", now=started)
    if status == "finished":
        selfcheck.finish_run(session=session, run_id=run.id, now=finished)
    elif status == "abandoned":
        selfcheck.abandon_run(session=session, run_id=run.id)
    session.flush()
    return run


def add_inspection(session, *, userid, when, unit="CD-SY", kind=inspection.Kind.INSPECTION,
                   content="检查消防设施", findings=0):
    row = inspection.record(session=session, unit_id=unit_by_code(session=session, code=unit).id,
                            person_id=person(session, userid).id, kind=kind, announced=True,
                            content=content, at=when, photo_ids=[])
    for i in range(findings):
        hazard = add_hazard(session, reported=when, description=f"检查发现问题{i + 1}")
        inspection.add_finding(session=session, inspection_id=row.id, text="问题",
                               hazard_id=hazard.id)
    return row


def add_shift(session, *, day: date, kind="day", checked_in: bool, unit="CD-SY",
              userid="demo-duty"):
    start, end = duty.slot_times(day, kind, TZ)
    shift, _ = duty.set_slot(session=session, unit_id=unit_by_code(session=session, code=unit).id,
                             day=day, kind=kind, start_at=start, end_at=end,
                             person_id=person(session, userid).id, leader_id=None, now=start)
    if checked_in:
        shift.checked_in_at = start
    session.flush()


def add_campaign(session):
    """A campaign for schools (not kindergartens) with deliverables due around October; the
    deliverables by key."""
    c = cp.Campaign(key="autumn", name="秋季安全攻坚行动", units=["school"],
                    starts_on=date(2025, 9, 1), ends_on=date(2025, 12, 31), loaded_at=at(9, 1))
    session.add(c)
    session.flush()
    phase = cp.CampaignPhase(campaign_id=c.id, seq=1, name="集中整治", starts_on=date(2025, 9, 1),
                             ends_on=date(2025, 12, 31))
    session.add(phase)
    session.flush()
    items = {}
    for key, name, due in (("sep", "九月总结", date(2025, 9, 30)),
                           ("plan", "工作方案", date(2025, 10, 1)),
                           ("oct", "十月总结", date(2025, 10, 31)),
                           ("nov", "十一月总结", date(2025, 11, 5))):
        items[key] = cp.Deliverable(campaign_id=c.id, phase_id=phase.id, key=key, series=key,
                                    name=name, due=due)
        session.add(items[key])
    session.flush()
    return items


def seed_october(session):
    """October 2025 in the demo district (see the expected figures below)."""
    h = {}
    h["before"] = add_hazard(session, reported=at(9, 30, 23, 59))  # September's last minute
    h["first"] = add_hazard(session, reported=at(10, 1, 0, 0), description="操场围栏松动")
    h["closed"] = add_hazard(session, reported=at(10, 3), deadline=date(2025, 10, 10),
                             rectified=at(10, 6, 9), closed=at(10, 6, 10),
                             description="三楼东侧消防通道堵塞", location="教学楼三楼",
                             measures="清理杂物并张贴禁止堆放标识")
    h["major_rectified"] = add_hazard(session, reported=at(10, 10, 14), level=Level.MAJOR,
                                      deadline=date(2025, 10, 20), rectified=at(10, 25))
    h["overdue"] = add_hazard(session, reported=at(10, 12), deadline=date(2025, 10, 20))
    h["due_last_day"] = add_hazard(session, reported=at(10, 15), deadline=date(2025, 10, 31))
    h["closed_in_november"] = add_hazard(session, reported=at(10, 20),
                                         deadline=date(2025, 10, 28), rectified=at(11, 2, 9),
                                         closed=at(11, 2, 10))
    h["last"] = add_hazard(session, reported=at(10, 31, 23, 30), level=Level.MAJOR)  # UTC 15:30
    h["after"] = add_hazard(session, reported=at(11, 1, 0, 0))  # UTC: still 31 October
    h["kindergarten"] = add_hazard(session, userid="cdyey-liaison", reported=at(10, 5),
                                   deadline=date(2025, 10, 30), rectified=at(10, 31, 20),
                                   closed=at(10, 31, 23, 30), description="厨房燃气软管老化",
                                   location="幼儿园厨房", reviewer="cdyey-leader")

    add_run(session, started=at(10, 1, 0, 0), finished=at(10, 1, 0, 5))
    add_run(session, started=at(9, 30, 23, 50), finished=at(10, 1, 0, 20))  # finished in Oct
    add_run(session, started=at(10, 31, 23, 40), finished=at(10, 31, 23, 50), area="chemicals",
            answers=[("chem-1", selfcheck.Answer.NO), ("chem-2", selfcheck.Answer.YES)])
    add_run(session, started=at(10, 31, 23, 55), finished=at(11, 1, 0, 10))  # November
    add_run(session, started=at(10, 20), status="abandoned")
    add_run(session, userid="demo-principal", started=at(10, 21), status="open")

    add_inspection(session, userid="demo-principal", when=at(10, 1, 0, 0))
    add_inspection(session, userid="demo-principal", when=at(10, 16), findings=1,
                   content="检查实验室危化品管理")
    add_inspection(session, userid="cdsy-deputy", when=at(10, 31, 23, 59))
    add_inspection(session, userid="cdsy-deputy", when=at(11, 1, 0, 0))  # November
    add_inspection(session, userid="cd-leader", when=at(10, 18),
                   kind=inspection.Kind.SUPERVISION)  # a visit from above: neither

    add_shift(session, day=date(2025, 9, 30), checked_in=True)
    add_shift(session, day=date(2025, 10, 1), checked_in=True)
    add_shift(session, day=date(2025, 10, 15), kind="night", checked_in=False)
    add_shift(session, day=date(2025, 10, 31), kind="24h", checked_in=True)
    add_shift(session, day=date(2025, 11, 1), checked_in=True)

    items = add_campaign(session)
    school = person(session, "demo-liaison")
    for key, when in (("plan", at(10, 9)), ("plan", at(10, 10)), ("nov", at(11, 3))):
        cp.record_submission(session=session, deliverable_id=items[key].id,
                             unit_id=school.unit_id, person_id=school.id, now=when,
                             text="已报送", photo_ids=[])
    return h


# hand-counted: the school's October (today 2025-11-03, so the whole month is over)
SCHOOL = UnitStats(
    found_general=6,   # first, closed, overdue, due_last_day, closed_in_november, + the finding
    found_major=2,     # major_rectified, last
    rectified=2,       # closed, major_rectified (closed_in_november: after the cutoff)
    closed=1,          # closed
    overdue=2,         # overdue (10-20), closed_in_november (10-28); not due_last_day (10-31)
    rectification_rate=2 / 8,
    selfchecks=3,      # 10-01 00:05, the one finished 10-01 00:20, 10-31 23:50
    inspections_principal=2, inspections_other=1,
    checkin_rate=2 / 3, shifts=3, checked_in=2,  # 10-01, 10-15 (missed), 10-31
    deliverables_submitted=1, deliverables_due=2,  # 工作方案 (twice) of 工作方案 and 十月总结
)
KINDERGARTEN = UnitStats(found_general=1, rectified=1, closed=1, rectification_rate=1.0)
WEST = UnitStats(deliverables_due=2)


def test_a_month_of_records_gives_the_hand_counted_figures(demo):
    demo.call(seed_october)

    def query(*, session):
        ids = {code: unit_by_code(session=session, code=code).id
               for code in ("CD-SY", "CD-YEY", "CX-ZX", "JYJ")}
        got = unit_stats(session=session, unit_ids=list(ids.values()), start=OCT[0],
                         end=OCT[1], tz=TZ, today=date(2025, 11, 3))
        return {code: got[i] for code, i in ids.items()}
    got = demo.call(query)
    # the finding of 10-16's inspection is a hazard too; it has no deadline
    assert got["CD-SY"] == SCHOOL
    assert got["CD-YEY"] == KINDERGARTEN
    assert got["CX-ZX"] == WEST
    assert got["JYJ"] == UnitStats()
    assert got["CD-SY"].found == 8 and got["JYJ"].rectification_rate is None


def test_a_month_in_progress_is_counted_up_to_today(demo):
    demo.call(seed_october)

    def query(*, session):
        unit = unit_by_code(session=session, code="CD-SY").id
        return unit_stats(session=session, unit_ids=[unit], start=OCT[0], end=OCT[1], tz=TZ,
                          today=date(2025, 10, 21))[unit]
    got = demo.call(query)
    # on 10-21: major_rectified (deadline 10-20, rectified 10-25) is still overdue, not done
    assert (got.rectified, got.closed, got.overdue) == (1, 1, 2)
    assert (got.shifts, got.checked_in, got.checkin_rate) == (2, 1, 0.5)  # 10-01, 10-15


def test_the_first_and_last_local_day_alone(demo):
    demo.call(seed_october)

    def query(*, session, day):
        unit = unit_by_code(session=session, code="CD-SY").id
        return unit_stats(session=session, unit_ids=[unit], start=day, end=day, tz=TZ,
                          today=date(2025, 11, 3))[unit]
    first = demo.call(query, day=date(2025, 10, 1))
    last = demo.call(query, day=date(2025, 10, 31))
    assert (first.found_general, first.found_major, first.selfchecks,
            first.inspections_principal, first.shifts) == (1, 0, 2, 1, 1)
    assert (last.found_general, last.found_major, last.selfchecks, last.inspections_other,
            last.shifts, last.deliverables_due) == (0, 1, 1, 1, 1, 1)


def test_every_unit_comes_from_a_few_grouped_queries(demo):
    """2,500 units cost the same handful of statements per 900 units, not one per unit."""
    demo.call(seed_october)

    def add_units(*, session):
        parent = unit_by_code(session=session, code="CD").id
        session.execute(insert(Unit), [{"code": f"S{i:05d}", "name": f"学校{i:05d}",
                                        "kind": "school", "parent_id": parent}
                                       for i in range(2500)])
        return [u for u in session.exec(select(Unit.id)).all()]
    ids = demo.call(add_units)
    statements = []
    event.listen(demo.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    got = demo.call(unit_stats, unit_ids=ids, start=OCT[0], end=OCT[1], tz=TZ,
                    today=date(2025, 11, 3))
    assert len(got) == len(ids) == 2507
    assert 0 < len(statements) <= 4 * 3 + 1 + 1 + 3  # per chunk of 900; deliverables; campaigns
    assert sum(s.deliverables_due for s in got.values()) == 2 * 2502  # every school


@pytest.mark.parametrize("text, expected", [
    ("2026-10", "2026-10"), ("2026/9", "2026-09"), ("２０２６年１０月", "2026-10"),
    ("202610", "2026-10"), ("10月", "2026-10"), ("12月", "2025-12"), ("上月", "2026-10"),
    ("本月", "2026-11"), ("", None),
])
def test_the_month_people_type(text, expected):
    assert monthly.parse_month(text, today=date(2026, 11, 3)) == expected


@pytest.mark.parametrize("text", ["2026-13", "下个月", "10", "2026-10-01"])
def test_a_month_that_is_not_one(text):
    with pytest.raises(ValueError):
        monthly.parse_month(text, today=date(2026, 11, 3))


def test_the_window_of_a_month():
    win = monthly.window("2026-12", due_day=5, late_days=5)
    assert (win.first, win.last, win.due, win.lock) == (
        date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 5), date(2027, 1, 10))
    assert [win.phase(date(2027, 1, d)) for d in (5, 6, 10, 11)] == [
        "open", "late", "late", "locked"]
    assert monthly.window("2026-01", due_day=28, late_days=0).due == date(2026, 2, 28)


def test_the_monthly_config_keys(tmp_path):
    from bot.config import ConfigError, load_config
    path = tmp_path / "c.toml"
    path.write_text("[monthly]\ndue_day = 10\n", encoding="utf-8")
    cfg = load_config(path, env={}, require_app=False)
    assert (cfg.monthly.due_day, cfg.monthly.late_days) == (10, 5)
    assert load_config(path, env={"SAFEBOT_MONTHLY_LATE_DAYS": "0"},
                       require_app=False).monthly.late_days == 0
    assert load_config(None, env={}, require_app=False).monthly.due_day == 5
    path.write_text("[monthly]\ndue_day = 31\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="monthly.due_day"):
        load_config(path, env={}, require_app=False)
