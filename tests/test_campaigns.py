"""Campaigns (专项行动) with a moved clock: seed 003 from mobilisation to summary, reminders on
the configured days before each deadline, the morning-after list for the chain's leaders,
loading a file twice, validation errors, and `阶段` / `提交` through the real door."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.cli import main
from bot.clock import FakeClock
from bot.config import RemindersConfig
from bot.render import Renderer
from bot.workcal import load_calendar
from models import campaign as cp
from models.base import as_utc
from models.campaign_file import CampaignError, load_campaign, parse_campaign
from models.digest import DigestItem
from models.org import Unit, get_identity
from reminders import SWEEPS
from reminders.pusher import Pusher
from reminders.sweep import Sweeper
from tests.conftest import make_config
from tests.test_outbox_cli import config_file
from tests.test_reminders import outbox_rows

TZ = ZoneInfo("Asia/Shanghai")
QUIET = "22:00-07:00"
SEED_003 = "2025-jianan-xuebiaozhun.toml"
COVERED = {"CD", "CX", "CD-SY", "CD-YEY", "CX-ZX", "CX-YEY"}


def at(y, m, d, hh=8, mm=5):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def example(name: str) -> str:
    return (files("models") / "campaigns" / name).read_text(encoding="utf-8")


def load(db, text: str, file: str = SEED_003, now: datetime | None = None) -> dict:
    return db.call(load_campaign, spec=parse_campaign(file, text), now=now or at(2025, 3, 1))


def sweeper_for(db, clock, **settings):
    return Sweeper(db=db, clock=clock, tz=TZ, calendar=load_calendar(),
                   pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET),
                   settings=RemindersConfig(**settings), quiet_hours=QUIET, areas={},
                   sweeps=SWEEPS)


def items_by_key(db):
    return db.call(lambda session: {d.key: d for d in session.exec(select(cp.Deliverable))})


def unit_ids(db):
    return db.call(lambda session: {u.code: u.id for u in session.exec(select(Unit))})


def submit(db, *, userid: str, item: cp.Deliverable, when: datetime, text: str = "") -> None:
    who = db.call(get_identity, userid=userid)
    db.call(cp.record_submission, deliverable_id=item.id, unit_id=who.unit_id,
            person_id=who.person_id, now=when, text=text, photo_ids=[])


def campaign_reminders(db, item: cp.Deliverable) -> list[tuple[str, int, str, date]]:
    """(unit id, days before, userid, the day it was queued) of every reminder for ``item``."""
    rows = db.call(lambda session: list(session.exec(
        select(DigestItem).where(DigestItem.key.startswith(f"campaign:{item.id}:")))))
    out = []
    for row in rows:
        _, _, unit, days, user = row.key.split(":")
        out.append((int(unit), int(days), user, as_utc(row.created_at).astimezone(TZ).date()))
    return sorted(out)


async def test_a_whole_campaign_from_mobilisation_to_summary(demo):
    load(demo, example(SEED_003))
    items, units = items_by_key(demo), unit_ids(demo)
    plan, april, may, summary = (items[k] for k in ("plan", "sanxue-sancha-2025-04",
                                                    "sanxue-sancha-2025-05", "summary"))
    assert (plan.due, april.due, may.due, summary.due) == (
        date(2025, 3, 31), date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 25))
    submissions = {date(2025, 3, 26): (plan, ["demo-liaison"]),
                   date(2025, 4, 28): (april, ["demo-liaison", "cxzx-liaison"]),
                   date(2025, 6, 20): (summary, ["demo-liaison"])}
    clock = FakeClock(at(2025, 3, 1))
    sweeper = sweeper_for(demo, clock)
    day = date(2025, 3, 1)
    while day <= date(2025, 7, 2):
        if day in submissions:
            item, users = submissions[day]
            for user in users:
                submit(demo, userid=user, item=item, when=at(day.year, day.month, day.day, 7))
        for hour in (0, 8, 15):  # at night nothing; twice by day sends nothing twice
            clock.set(at(day.year, day.month, day.day, hour))
            await sweeper.run_once()
        day += timedelta(days=1)

    # every unit that did not submit: once each, 7, 3, 1 days before and on the day
    cxzx = [(d, u, q) for unit, d, u, q in campaign_reminders(demo, plan)
            if unit == units["CX-ZX"]]
    assert cxzx == [(0, "cxzx-leader", date(2025, 3, 31)), (0, "cxzx-liaison", date(2025, 3, 31)),
                    (1, "cxzx-liaison", date(2025, 3, 30)), (3, "cxzx-liaison", date(2025, 3, 28)),
                    (7, "cxzx-liaison", date(2025, 3, 24))]
    assert {unit for unit, *_ in campaign_reminders(demo, plan)} == {units[c] for c in COVERED}
    # a unit that submitted on the 26th heard only the 7-day reminder of the 24th
    assert [(d, u) for unit, d, u, _ in campaign_reminders(demo, plan)
            if unit == units["CD-SY"]] == [(7, "demo-liaison")]
    assert [d for unit, d, *_ in campaign_reminders(demo, summary)
            if unit == units["CD-SY"]] == [7]
    assert not [r for r in campaign_reminders(demo, april)
                if r[0] in (units["CD-SY"], units["CX-ZX"]) and r[1] < 3]  # 28th
    assert len([r for r in campaign_reminders(demo, may) if r[0] == units["CD-SY"]]) == 5

    # the reminder reaches the liaison's morning digest with the number to submit with
    [digest] = outbox_rows(demo, "digest:cxzx-liaison:2025-03-24")
    assert "活动实施方案" in digest.payload["content"] and "7 天后" in digest.payload["content"]
    assert f"提交 {plan.id}" in digest.payload["content"]

    # the morning after: the chain's leaders get the units that did not deliver, once
    missing = outbox_rows(demo, f"campaign-missing:{plan.id}:")
    assert sorted(r.recipient for r in missing) == ["cd-leader", "cd-liaison", "cx-leader",
                                                    "demo-bureau"]
    assert all(as_utc(r.created_at).astimezone(TZ).date() == date(2025, 4, 1) for r in missing)
    text = {r.recipient: r.payload["content"] for r in missing}
    assert "城东中心幼儿园" in text["cd-leader"] and "城东实验小学" not in text["cd-leader"]
    assert "城西" not in text["cd-leader"]
    assert "以下 5 个单位" in text["demo-bureau"] and "城东镇中心校" in text["demo-bureau"]
    assert "城东实验小学" not in text["demo-bureau"]
    april_missing = {r.recipient: r.payload["content"]
                     for r in outbox_rows(demo, f"campaign-missing:{april.id}:")}
    assert "城西中学" not in april_missing["cx-leader"]
    assert "城西幼儿园" in april_missing["cx-leader"]
    assert outbox_rows(demo, f"campaign-missing:{summary.id}:")  # 6-26: the summary's list


async def test_reminder_days_come_from_the_settings(demo):
    load(demo, example(SEED_003))
    plan = items_by_key(demo)["plan"]
    clock = FakeClock(at(2025, 3, 20))
    sweeper = sweeper_for(demo, clock, deadline_days=(5,))
    for d in range(20, 32):
        clock.set(at(2025, 3, d))
        await sweeper.run_once()
    assert {(days, q) for _, days, _, q in campaign_reminders(demo, plan)} == {
        (5, date(2025, 3, 26))}


async def test_nothing_is_reminded_at_night(demo):
    load(demo, example(SEED_003))
    clock = FakeClock(at(2025, 3, 24, 23, 30))
    assert (await sweeper_for(demo, clock).run_once())["campaigns"] == 0


def test_loading_the_same_file_twice_updates_and_never_duplicates(db, database_url, tmp_path,
                                                                  capsys):
    from bot.sandbox.demo import seed_demo
    db.call(seed_demo)
    path = tmp_path / SEED_003
    path.write_text(example(SEED_003), encoding="utf-8")
    cfg = config_file(tmp_path, database_url)
    assert main(["campaign", "load", str(path), "--config", cfg]) == 0
    assert "已导入" in capsys.readouterr().out
    first = items_by_key(db)
    submit(db, userid="demo-liaison", item=first["plan"], when=at(2025, 3, 20))

    changed = example(SEED_003).replace("due = 2025-06-25", "due = 2025-06-26").replace(
        'name = "总结报告"', 'name = "专项行动总结报告"')
    path.write_text(changed, encoding="utf-8")
    assert main(["campaign", "load", str(path), "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "已更新" in out and "3 个阶段，4 项应交材料" in out
    again = items_by_key(db)
    assert {k: d.id for k, d in again.items()} == {k: d.id for k, d in first.items()}
    assert (again["summary"].due, again["summary"].name) == (date(2025, 6, 26), "专项行动总结报告")
    counts = db.call(lambda session: (len(session.exec(select(cp.Campaign)).all()),
                                      len(session.exec(select(cp.CampaignPhase)).all())))
    assert counts == (1, 3)

    # a deliverable someone has submitted cannot vanish from the file
    start = changed.index("  [[phases.deliverables]]\n  key = \"plan\"")
    end = changed.index("[[phases]]", start)
    path.write_text(changed[:start] + changed[end:], encoding="utf-8")
    assert main(["campaign", "load", str(path), "--config", cfg]) == 1
    assert "deliverable 'plan' has submissions" in capsys.readouterr().err
    assert items_by_key(db)["plan"].id == first["plan"].id


def test_the_four_example_campaigns_load(demo):
    for name in sorted(p.name for p in (files("models") / "campaigns").iterdir()
                       if p.name.endswith(".toml")):
        assert load(demo, example(name), file=name)["created"]
    assert len(demo.call(lambda session: session.exec(select(cp.Campaign)).all())) == 4


GOOD = example(SEED_003)


@pytest.mark.parametrize("text, expected", [
    ("key = [", "not valid TOML"),
    (GOOD.replace('key = "jianan-2025-xuebiaozhun"', 'key = "Jianan 2025"'), "key 'Jianan 2025'"),
    (GOOD.replace('units = ["township", "school", "kindergarten"]', "units = []"),
     "'units' must be"),
    (GOOD.replace("end = 2025-05-31", "end = 2025-03-31"),
     "phase 2 (学习排查): start 2025-04-01 is after end 2025-03-31"),
    (GOOD.replace("due = 2025-06-25", "due = 2025-07-25"),
     "phase 3 (总结验收), deliverable 1 (summary): due 2025-07-25 is outside the phase"),
    (GOOD.replace("  day = 31\n", ""), "deliverable 1 (sanxue-sancha): 'day' must be"),
    (GOOD.replace('key = "summary"', 'key = "plan"'), "deliverable key 'plan' is used twice"),
    (GOOD.replace('name = "总结验收"', 'name = "学习排查"'), "name '学习排查' is used twice"),
    (GOOD.replace("summary = \"认真梳理", "colour = 1\nsummary = \"认真梳理"),
     "phase 3 (总结验收): unknown field(s) colour"),
    (GOOD.replace("start = 2025-06-01", 'start = "6月1日"'),
     "phase 3 (总结验收): 'start' must be a date"),
])
def test_a_broken_campaign_file_is_refused_with_what_is_wrong(text, expected):
    with pytest.raises(CampaignError) as err:
        parse_campaign("bad.toml", text)
    assert str(err.value).startswith("bad.toml: ") and expected in str(err.value)


def test_unknown_unit_codes_are_named_and_nothing_is_stored(demo):
    text = GOOD.replace('units = ["township", "school", "kindergarten"]',
                        'units = ["CD-SY", "NOPE-1"]')
    with pytest.raises(CampaignError, match="unknown unit code\\(s\\) NOPE-1"):
        load(demo, text)
    assert not demo.call(lambda session: session.exec(select(cp.Campaign)).all())


# -- through the door: the service's clock stands in April 2025 ---------------------------

@pytest.fixture
def clock():
    return FakeClock(at(2025, 4, 10, 9, 0))


@pytest.fixture
async def door(start_service, demo, database_url, fake_wecom):
    load(demo, example(SEED_003))
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


async def test_phase_shows_the_current_phase_what_is_due_and_what_was_delivered(door, demo):
    from tests.test_hazard_loop import say
    items = items_by_key(demo)
    shown = await say(door, "demo-liaison", "阶段")
    assert "当前阶段：学习排查（2025-04-01 至 2025-05-31）" in shown
    assert f"[{items['plan'].id}] 活动实施方案，2025-03-31 前（动员部署）：未提交，已逾期 10 天" in shown
    assert "三学三查记录（2025年4月），2025-04-30 前（学习排查）：未提交，还有 20 天" in shown

    done = await say(door, "demo-liaison", "提交 实施方案 已召开专题会议，方案已报安全股")
    assert "活动实施方案" in done and "逾期提交" in done and "完成" in done
    assert "已补充说明" in await say(door, "demo-liaison", "补充：会议纪要另附")
    assert "提交完成" in await say(door, "demo-liaison", "完成")
    submission = demo.call(lambda session: session.exec(select(cp.Submission)).one())
    assert submission.text == "已召开专题会议,方案已报安全股\n补充:会议纪要另附"  # NFKC

    shown = await say(door, "demo-liaison", "阶段")
    assert "活动实施方案，2025-03-31 前（动员部署）：已提交 2025-04-10 09:00" in shown
    township = await say(door, "cd-leader", "阶段")
    assert f"[{items['plan'].id}] 活动实施方案" in township and "下属单位已交 1/2" in township


async def test_submit_by_number_with_a_photo_and_the_month_now_due(door, demo, fake_wecom):
    from tests.test_hazard_loop import say
    items = items_by_key(demo)
    done = await say(door, "cxzx-liaison", "提交 三学三查记录 4月已完成三学三查")
    assert "三学三查记录（2025年4月）" in done
    media = fake_wecom.add_media(b"\xff\xd8photo", "image/jpeg", "check.jpg")
    photo = (await door.wecom.image("cxzx-liaison", media)).reply_text
    assert "共 1 张照片" in photo
    file_xml = door.wecom.message_xml("cxzx-liaison", "file",
                                      "<MediaId>FILE1</MediaId><FileName>记录.docx</FileName>")
    assert "已记录收到文件（共 1 个）" in (await door.wecom.post_plaintext(file_xml)).reply_text
    moved_on = await say(door, "cxzx-liaison", "台账")  # a command ends the submission
    assert "隐患台账" in moved_on
    assert "隐患台账" in await say(door, "cxzx-liaison", "台账")
    held = demo.call(lambda session: session.exec(select(cp.Submission)).one())
    assert (len(held.photo_ids), held.files) == (1, 1)

    by_number = await say(door, "cxzx-leader", f"提交 {items['plan'].id}")
    assert "已记录本单位提交的「活动实施方案」" in by_number
    await say(door, "cxzx-leader", "完成")
    again = await say(door, "cxzx-liaison", "提交 三学三查记录")
    assert "2025年5月" in again and "再次" not in again  # April is in: the month now due
    await say(door, "cxzx-liaison", "完成")
    unknown = await say(door, "cxzx-leader", "提交 应急演练视频")
    assert "没有找到与「应急演练视频」对应的待交材料" in unknown and "总结报告" in unknown
    assert "三学三查" not in unknown  # only what the unit still owes
    assert "你的角色不能使用「提交」" in await say(door, "cxzx-duty", "提交 实施方案")


async def test_a_unit_with_a_group_hears_its_deadline_reminders_there_too(demo):
    from bot.aibot.channel import GroupPushes
    from models import outbox
    load(demo, example(SEED_003))
    plan = items_by_key(demo)["plan"]
    clock = FakeClock(at(2025, 3, 24, 9))  # 7 days before the plan is due
    sweeper = Sweeper(db=demo, clock=clock, tz=TZ, calendar=load_calendar(),
                      pusher=Pusher(renderer=Renderer(TZ), tz=TZ, quiet_hours=QUIET,
                                    groups=GroupPushes(aibot_push=False,
                                                       webhooks={"CD-SY": "key-cdsy"})),
                      settings=RemindersConfig(), quiet_hours=QUIET, areas={}, sweeps=SWEEPS)
    await sweeper.run_once()
    await sweeper.run_once()
    rows = demo.call(lambda session: list(session.exec(select(outbox.OutboxMessage).where(
        outbox.OutboxMessage.channel == "webhook"))))
    assert [(r.recipient, r.key) for r in rows] == [
        ("CD-SY", f"campaign-group:{plan.id}:{unit_ids(demo)['CD-SY']}:7:webhook:CD-SY")]
    assert plan.name in str(rows[0].payload)
