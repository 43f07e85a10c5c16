"""Authorization (issue 8, part 4): every command word against every demo role, and a unit
outside the sender's chain; dashboard links that cannot be widened, altered or reused.

The matrix sends each command (with the number of a hazard of 城东实验小学 where it takes one)
from each person and sorts the answer into allowed or refused. A refused command must leave
the database as it was (a row count of every table and the hazard's own row, before and after).
The command words come from the routers, so a new command without a row in ``EXPECTED`` fails
``test_every_command_word_has_a_row_in_the_matrix``.

Refused commands run first, while nothing else is going on (an allowed export or push works
in the background and would make a before/after snapshot meaningless); allowed ones run
after, each followed by 取消 so no conversation outlives its command.
"""
from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from bot.clock import FakeClock
from bot.router import Routes
from handlers import ROUTERS
from models.hazard import Hazard
from models.org import Person, PersonRole, Role, Unit
from tests.conftest import make_config
from tests.test_hazard_loop import PLAN, say

# -- who ---------------------------------------------------------------------------------------

PEOPLE = {
    "liaison": "demo-liaison",              # 城东实验小学 联络员 + 成员
    "principal": "demo-principal",          # 城东实验小学 校长 (组长)
    "deputy": "cdsy-deputy",                # 城东实验小学 副校长 (副组长)
    "duty": "demo-duty",                    # 城东实验小学 值班人员 (the plan's 责任人)
    "township_leader": "cd-leader",         # 城东镇中心校 校长
    "township_officer": "cd-liaison",       # 城东镇中心校 联络员 + 安全专员
    "bureau_officer": "demo-bureau",        # 教育局 安全专员 + 成员
    "admin": "demo-admin",                  # 教育局 管理员 + 联络员
    "other_school_liaison": "cxzx-liaison",  # 城西中学: outside the hazard's chain
    "other_township_leader": "cx-leader",   # 城西镇中心校: outside the hazard's chain
    "stranger": "stranger-matrix",          # not bound to any unit
}
ALL = frozenset(PEOPLE)
BOUND = ALL - {"stranger"}
SCHOOL = frozenset({"liaison", "principal", "deputy", "duty"})
CHAIN = SCHOOL | {"township_leader", "township_officer", "bureau_officer", "admin"}
WORKERS = frozenset({"liaison", "principal", "deputy"})               # can_work_on
REVIEWERS = frozenset({"principal", "deputy", "township_leader", "township_officer",
                       "bureau_officer"})                              # can_review (一般)
REOPENERS = REVIEWERS | {"admin"}
LEADERS = frozenset({"principal", "deputy", "township_leader", "township_officer",
                     "bureau_officer", "admin", "other_township_leader"})
EDITORS = frozenset({"liaison", "principal", "deputy", "township_leader", "township_officer",
                     "admin", "other_school_liaison", "other_township_leader"})
ABOVE_CDSY = frozenset({"township_leader", "township_officer", "bureau_officer"})
BUREAU = frozenset({"bureau_officer", "admin"})

# -- what each command word is sent as, and who may use it ----------------------------------------
# {n}: the hazard's number. Allowed means the command got past every authorization check; an
# answer about the hazard's state ("当前状态为…") is allowed.
EXPECTED: dict[str, tuple[str, frozenset[str]]] = {
    "取消": ("取消", ALL),
    "下一页": ("下一页", BOUND),
    "帮助": ("帮助", BOUND),
    "help": ("help", BOUND),
    "菜单": ("菜单", BOUND),
    "绑定": ("绑定 AB3D5F7H", ALL),  # public: a bound sender is told they are bound already
    "绑定群": ("绑定群 城东实验小学", frozenset({"principal", "township_leader", "admin",
                                              "other_township_leader"})),
    "上报": ("上报 矩阵测试的隐患 @矩阵测试的位置", BOUND),
    "报告隐患": ("报告隐患 矩阵测试的隐患 @矩阵测试的位置", BOUND),
    "整改": ("整改 {n}", WORKERS),
    "整改完成": ("整改完成 {n}", WORKERS | {"duty"}),  # and the plan's 责任人
    "复查": ("复查 {n} 通过", REVIEWERS),
    "延期": ("延期 {n} 10天后 矩阵测试", WORKERS),
    "批准延期": ("批准延期 {n}", REVIEWERS),
    "同意延期": ("同意延期 {n}", REVIEWERS),
    "驳回延期": ("驳回延期 {n} 矩阵测试", REVIEWERS),
    "不同意延期": ("不同意延期 {n} 矩阵测试", REVIEWERS),
    "重新打开": ("重新打开 {n} 矩阵测试", REOPENERS),
    "隐患": ("隐患 {n}", CHAIN),
    "稍后": ("稍后 {n} 3天", CHAIN),
    "台账": ("台账", BOUND),
    "逾期": ("逾期", BOUND),
    "自查": ("自查 消防", BOUND),
    "导出台账": ("导出台账", LEADERS),
    "月报": ("月报", EDITORS),
    "导出月报": ("导出月报", LEADERS),
    "阶段": ("阶段", BOUND),
    "专项行动": ("专项行动", BOUND),
    "提交": ("提交 实施方案", EDITORS),
    "检查": ("检查 矩阵测试检查", frozenset({"principal", "deputy", "township_leader",
                                         "other_township_leader"})),
    "督查": ("督查 城东实验小学 矩阵测试督查", ABOVE_CDSY),
    "暗访": ("暗访 城东实验小学 矩阵测试暗访", ABOVE_CDSY),
    "检查情况": ("检查情况", LEADERS),
    "值班": ("值班", BOUND),
    "值班表": ("值班表 明天 白班 孙值班", EDITORS),  # setting a slot: 联络员 and leaders
    "签到": ("签到 门卫室", BOUND),
    "平安": ("平安", BOUND),
    "报告": ("报告 矩阵测试一切正常", BOUND),
    "交班": ("交班 矩阵测试交接", BOUND),
    "紧急": ("紧急 矩阵测试演练请忽略", BOUND),
    "查岗": ("查岗 城东实验小学", ABOVE_CDSY),
    "在岗": ("在岗", BOUND),
    "查岗记录": ("查岗记录", frozenset({"principal", "deputy", "township_leader",
                                       "township_officer", "bureau_officer",
                                       "other_township_leader"})),
    "请假": ("请假 明天", BOUND),
    "统计": ("统计", LEADERS),
    "月报情况": ("月报情况", LEADERS),
    "看板": ("看板", LEADERS),
    "分级": ("分级", BUREAU),
    "通报": ("通报", BUREAU),  # the preview; 通报 确认 would send
    "清单": ("清单 消防", BOUND),
}

# what an authorization refusal says (templates: common/forbidden, common/unbound,
# hazard/not_found, hazard/forbidden + refused "forbidden", stats/bureau_only,
# inspection/not_above, inspection/visit_usage and duty/spot_asked for a unit not below)
REFUSALS = ("你的角色不能使用", "你还没有绑定单位", "没有找到隐患", "你不能对隐患",
            "只有教育局的负责人和安全专员可以使用", "用于镇中心校和教育局对下属单位的督导检查",
            "没有找到下属单位")
DESCRIPTION = "矩阵专用隐患二楼东侧消防栓被杂物遮挡"  # nothing NFKC would change
DEBUG = os.environ.get("MATRIX_DEBUG")  # MATRIX_DEBUG=1 pytest -s …: print every answer
OUTSIDE = frozenset({"other_school_liaison", "other_township_leader", "stranger"})


def refused(reply: str) -> bool:
    return any(marker in reply for marker in REFUSALS)


def test_every_command_word_has_a_row_in_the_matrix():
    words = {c.word for c in Routes(ROUTERS).commands}
    assert not words - set(EXPECTED), f"commands without a row in EXPECTED: {words - set(EXPECTED)}"
    assert not set(EXPECTED) - words, f"rows for commands that are gone: {set(EXPECTED) - words}"


def test_the_people_hold_the_roles_the_matrix_assumes(demo):
    """The demo district is the matrix's premise: a changed seed must change the table too."""
    def roles(*, session):
        rows = session.exec(select(Person.userid, Unit.code, PersonRole.role)
                            .join(Unit, Unit.id == Person.unit_id)
                            .join(PersonRole, PersonRole.person_id == Person.id)).all()
        held: dict[str, tuple[str, set[str]]] = {}
        for userid, code, role in rows:
            held.setdefault(userid, (code, set()))[1].add(role)
        return held
    held = demo.call(roles)
    assert held["demo-liaison"] == ("CD-SY", {Role.LIAISON, Role.MEMBER})
    assert held["demo-duty"] == ("CD-SY", {Role.DUTY})
    assert held["cd-liaison"] == ("CD", {Role.LIAISON, Role.SAFETY_OFFICER})
    assert held["demo-bureau"] == ("JYJ", {Role.SAFETY_OFFICER, Role.MEMBER})
    assert held["demo-admin"] == ("JYJ", {Role.ADMIN, Role.LIAISON})
    assert held["cxzx-liaison"] == ("CX-ZX", {Role.LIAISON})
    assert held["cx-leader"] == ("CX", {Role.LEADER})
    assert "stranger-matrix" not in held


# -- the matrix --------------------------------------------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(start_service, database_url, fake_wecom):
    """No replay window: the tests move the clock a day on and still talk to the bot."""
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


def snapshot(db, number: str) -> tuple:
    """Row counts of every table (but the callback dedupe record every message adds) and the
    hazard's own row."""
    def read(*, session):
        names = sorted(t for t in inspect(session.connection()).get_table_names()
                       if t not in ("alembic_version", "processed_callback"))
        counts = session.execute(text("SELECT " + ", ".join(
            f'(SELECT count(*) FROM "{t}")' for t in names))).one()
        hazard = session.exec(select(Hazard).where(Hazard.number == number)).one()
        return tuple(zip(names, counts)), tuple(sorted(hazard.model_dump().items()))
    return db.call(read)


@pytest.fixture
async def planned(service) -> str:
    """A 一般 hazard of 城东实验小学 with its plan (责任人 孙值班, i.e. demo-duty)."""
    reply = await say(service, "demo-liaison", f"上报 {DESCRIPTION} @二楼东侧")
    assert "领域" in reply
    for answer in ("消防", "一般", "跳过"):
        await say(service, "demo-liaison", answer)
    number = re.search(r"YH\d{4}-\d{6}", await say(service, "demo-liaison", "确认")).group(0)
    assert "整改方案已记录" in await say(service, "demo-liaison", f"整改 {number} {PLAN}")
    return number


async def test_every_command_against_every_role(service, db, planned):
    number = planned
    pairs = [(word, who) for word in EXPECTED for who in PEOPLE]
    problems: list[str] = []
    last = None  # the snapshot after the previous message, while nothing else has been sent
    # refused first: nothing else may be running while the before/after snapshot is taken
    for word, who in sorted(pairs, key=lambda p: p[1] in EXPECTED[p[0]][1]):
        message, allowed = EXPECTED[word]
        message = message.format(n=number)
        before = (last or snapshot(db, number)) if who not in allowed else None
        reply = await say(service, PEOPLE[who], message)
        last = None
        if refused(reply) == (who in allowed):
            problems.append(f"{who:<22} {message!r}: expected "
                            f"{'allowed' if who in allowed else 'refused'}, got {reply[:80]!r}")
        if before is not None:
            last = snapshot(db, number)
            if last != before:
                problems.append(f"{who:<22} {message!r}: refused, but the database changed")
        if who in OUTSIDE and DESCRIPTION in reply:
            problems.append(f"{who:<22} {message!r}: saw a hazard outside their chain")
        if who in allowed or not refused(reply):  # a conversation it began ends here
            await say(service, PEOPLE[who], "取消")
            last = None
        if DEBUG:
            print(f"{who:<22} {message!r:<40} {'ALLOWED' if who in allowed else 'refused'}: "
                  f"{reply[:70]!r}")
    assert not problems, "\n".join(problems)


async def test_a_unit_outside_the_chain_sees_no_trace_of_the_hazard(service, planned):
    for who in ("other_school_liaison", "other_township_leader"):
        for command in ("台账", "逾期", "统计", "检查情况", "导出台账"):
            reply = await say(service, PEOPLE[who], command)
            assert planned not in reply and DESCRIPTION not in reply, (who, command)
    for who in ("township_leader", "bureau_officer"):  # above it: in their ledger
        assert planned in await say(service, PEOPLE[who], "台账")


# -- dashboard links ---------------------------------------------------------------------------

async def link_for(svc, user: str) -> tuple[str, str]:
    reply = await say(svc, user, "看板")
    url = re.search(r"https?://\S+", reply).group(0)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}", parse_qs(parts.query)["t"][0]


async def get(svc, path_and_query: str) -> tuple[int, str]:
    async with svc.http.get(svc.server.make_url(path_and_query), allow_redirects=False) as r:
        return r.status, await r.text()


def unit_ids(db) -> dict[str, int]:
    return db.call(lambda session: {u.code: u.id for u in session.exec(select(Unit))})


async def test_a_school_leaders_link_cannot_be_widened(service, db):
    path, token = await link_for(service, "demo-principal")
    ids = unit_ids(db)
    person, unit, stamp, sig = token.split(".")
    for code in ("CD", "JYJ", "CX-ZX"):  # the scope is inside the signed part
        widened = f"{person}.{ids[code]}.{stamp}.{sig}"
        for page in ("", "ledger", "overdue", "monthly", "campaigns", "charts"):
            status, html = await get(service, f"/dashboard/{page}?t={widened}")
            assert status == 403 and "链接无效" in html, (code, page)
    ledger = path.replace("/dashboard/?", "/dashboard/ledger?")
    for code in ("CD", "JYJ", "CX-ZX", "CD-YEY"):  # a filter can only narrow
        status, html = await get(service, f"{ledger}&unit={ids[code]}")
        assert status == 403 and "无权查看" in html, code
    status, html = await get(service, f"{ledger}&unit={ids['CD-SY']}")
    assert status == 200
    for page in ("", "overdue", "monthly", "charts"):  # other pages ignore a unit filter
        status, html = await get(service, f"/dashboard/{page}?t={token}&unit={ids['CX-ZX']}")
        assert status == 200 and "城西中学" not in html and "城东镇中心校 安全" not in html
    # a second t cannot smuggle another scope in: the first one is the one checked
    bureau_path, bureau_token = await link_for(service, "demo-bureau")
    status, html = await get(service, f"/dashboard/ledger?t={token}&t={bureau_token}")
    assert status == 200 and "城西中学" not in html
    forged = f"{person}.{ids['JYJ']}.{stamp}.{sig}"
    assert (await get(service, f"/dashboard/?t={forged}&t={bureau_token}"))[0] == 403
    # another person's token with this person's number: the signature covers the person too
    _, b_unit, b_stamp, b_sig = bureau_token.split(".")
    assert (await get(service, f"/dashboard/?t={person}.{b_unit}.{b_stamp}.{b_sig}"))[0] == 403


async def test_odd_filter_values_are_ignored_or_refused_never_a_500(service):
    path, _ = await link_for(service, "cd-leader")
    ledger = path.replace("/dashboard/?", "/dashboard/ledger?")
    for query in ("page=²", "page=፩", "unit=²", "unit=፩", "page=99999999999",
                  "unit=99999999999", "page=-1", "page=0", "status=%00", "area=%ff",
                  "level=' OR 1=1 --", "unit=٣", "unit=1&unit=2", "page=1e3"):
        status, _ = await get(service, f"{ledger}&{query}")
        assert status in (200, 403), query


async def test_an_altered_signature_is_refused(service):
    path, token = await link_for(service, "cd-leader")
    person, unit, stamp, sig = token.split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    for bad in (f"{person}.{unit}.{stamp}.{flipped}", f"{person}.{unit}.{int(stamp) + 1}.{sig}",
                f"{person}.{unit}.{stamp}.{sig.upper()}", f"{person}.{unit}.{stamp}",
                f"{person}.{unit}.{stamp}.{sig}=", f"{person}.{unit}.{stamp}.{sig}.x",
                f"{person} .{unit}.{stamp}.{sig}",
                "", "null", token[::-1]):
        status, html = await get(service, f"/dashboard/?t={bad}")
        assert status == 403 and "链接无效" in html, bad


async def test_an_expired_link_is_refused_and_cannot_be_reused(service, clock):
    path, token = await link_for(service, "demo-principal")
    assert (await get(service, path))[0] == 200
    clock.advance(hours=24)
    for page in ("", "ledger", "charts"):
        status, html = await get(service, f"/dashboard/{page}?t={token}")
        assert status == 403 and "链接已过期" in html, page
    # the expiry is signed: pushing it forward breaks the signature
    person, unit, stamp, sig = token.split(".")
    later = f"{person}.{unit}.{int(stamp) + 86400}.{sig}"
    assert (await get(service, f"/dashboard/?t={later}"))[0] == 403
    fresh, _ = await link_for(service, "demo-principal")  # a new 看板 gives a working link
    assert (await get(service, fresh))[0] == 200


async def test_a_link_stops_working_when_its_person_loses_the_role_or_moves(service, db):
    principal, _ = await link_for(service, "demo-principal")
    deputy, _ = await link_for(service, "cdsy-deputy")
    assert (await get(service, principal))[0] == 200 and (await get(service, deputy))[0] == 200

    def demote(*, session):
        person = session.exec(select(Person).where(Person.userid == "demo-principal")).one()
        for row in session.exec(select(PersonRole).where(PersonRole.person_id == person.id)):
            session.delete(row)
        session.add(PersonRole(person_id=person.id, role=Role.MEMBER))  # still in the unit

    def move(*, session):
        person = session.exec(select(Person).where(Person.userid == "cdsy-deputy")).one()
        person.unit_id = session.exec(select(Unit.id).where(Unit.code == "CX-ZX")).one()
    db.call(demote)
    db.call(move)
    for path in (principal, deputy):
        status, html = await get(service, path)
        assert status == 403 and "链接已失效" in html
    assert "你的角色不能使用" in await say(service, "demo-principal", "看板")
