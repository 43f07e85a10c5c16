"""``safebot invite`` makes codes; ``绑定 <邀请码>`` redeems them through the real callback."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.clock import Clock
from bot.db import Database
from models.invite import InviteCode, create_invites
from models.org import Person, PersonRole, Unit, unit_by_code

PEOPLE_HEADER = "企业微信账号,姓名,职务,办公电话,手机,单位编码,角色"
UNBOUND = "你还没有绑定单位"


def run_cli(tmp_path: Path, database_url: str, *args: str) -> int:
    # the fixture names the driver (postgresql+psycopg://); a config file names the database
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    command, *rest = args
    return main([command, "--config", str(config), *rest])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(db: Database) -> tuple:
    """Every unit, person, role and invite as plain tuples, to compare before and after."""
    def read(*, session):
        units = sorted((u.id, u.code, u.name, u.parent_id) for u in session.exec(select(Unit)))
        people = sorted((p.id, p.userid, p.name, p.unit_id) for p in session.exec(select(Person)))
        roles = sorted((r.person_id, r.role) for r in session.exec(select(PersonRole)))
        codes = sorted((i.code, i.used_at is None, i.used_by)
                       for i in session.exec(select(InviteCode)))
        return units, people, roles, codes
    return db.call(read)


def invite(tmp_path: Path, database_url: str, capsys, *args: str) -> list[str]:
    capsys.readouterr()
    assert run_cli(tmp_path, database_url, "invite", *args) == 0
    return capsys.readouterr().out.split()


def invites(db: Database) -> dict[str, InviteCode]:
    return db.call(lambda *, session: {i.code: i for i in session.exec(select(InviteCode)).all()})


def bound(db: Database, userid: str) -> tuple[Person, set[str]] | None:
    def read(*, session):
        person = session.exec(select(Person).where(Person.userid == userid)).first()
        if person is None:
            return None
        roles = session.exec(select(PersonRole.role).where(PersonRole.person_id == person.id))
        return person, set(roles.all())
    return db.call(read)


async def test_a_code_for_a_new_person_binds_through_the_callback_and_help_then_works(
        tmp_path, database_url, demo, service, capsys):
    [code] = invite(tmp_path, database_url, capsys, "--unit", "CD-SY", "--role", "联络员",
                    "--name", "新老师")
    assert len(code) == 8
    assert UNBOUND in (await service.wecom.text("new-user-id", "帮助")).reply_text

    delivery = await service.wecom.text("new-user-id", f"绑定 {code.lower()}")
    assert delivery.reply_text.startswith("绑定成功！新老师，你已加入「城东实验小学」，角色：联络员。")
    person, roles = bound(demo, "new-user-id")
    assert person.name == "新老师" and roles == {"liaison"}
    assert person.unit_id == demo.call(unit_by_code, code="CD-SY").id
    assert invites(demo)[code].used_by == "new-user-id"

    help_text = (await service.wecom.text("new-user-id", "帮助")).reply_text
    assert help_text.startswith("新老师（城东实验小学·联络员），你可以使用：")


async def test_a_code_for_an_imported_person_binds_that_person(
        tmp_path, database_url, demo, service, capsys):
    csv = f"{PEOPLE_HEADER}\n,吴老师,教师,,13912345678,CD-SY,成员\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "p.csv", csv))) == 0
    people_before = len(snapshot(demo)[1])
    [code] = invite(tmp_path, database_url, capsys, "--unit", "CD-SY", "--role", "leader",
                    "--person", "139 1234 5678", "--days", "30")
    stored = invites(demo)[code]
    assert stored.person_id is not None and stored.role == "leader"
    assert timedelta(days=29, hours=23) < stored.expires_at - stored.created_at \
        <= timedelta(days=30)

    reply = (await service.wecom.text("wu-teacher", f"绑定 {code}")).reply_text
    assert reply.startswith("绑定成功！吴老师，你已加入「城东实验小学」，角色：组长。")
    person, roles = bound(demo, "wu-teacher")
    assert person.id == stored.person_id and person.mobile == "13912345678"
    assert roles == {"member", "leader"}
    assert len(snapshot(demo)[1]) == people_before


async def test_a_used_code_is_refused_and_changes_nothing(tmp_path, database_url, demo,
                                                          service, capsys):
    [code] = invite(tmp_path, database_url, capsys, "--unit", "CX", "--role", "成员",
                    "--name", "甲")
    assert "绑定成功" in (await service.wecom.text("first-user", f"绑定 {code}")).reply_text
    before = snapshot(demo)
    reply = (await service.wecom.text("second-user", f"绑定 {code}")).reply_text
    assert reply == "这个邀请码已经用过了。每个邀请码只能用一次，请向管理员索取新的邀请码。"
    assert snapshot(demo) == before and bound(demo, "second-user") is None
    assert invites(demo)[code].used_by == "first-user"
    assert UNBOUND in (await service.wecom.text("second-user", "帮助")).reply_text


async def test_an_expired_code_is_refused_and_changes_nothing(demo, service):
    unit_id = demo.call(unit_by_code, code="CX-ZX").id
    [expired] = demo.call(create_invites, unit_id=unit_id, role="member", name="乙",
                          valid_days=1, now=Clock().now() - timedelta(days=2))
    before = snapshot(demo)
    reply = (await service.wecom.text("late-user", f"绑定 {expired.code}")).reply_text
    assert reply == "这个邀请码已过期，请向管理员索取新的邀请码。"
    assert snapshot(demo) == before and invites(demo)[expired.code].used_at is None


async def test_an_unknown_code_is_refused_and_changes_nothing(demo, service):
    before = snapshot(demo)
    reply = (await service.wecom.text("guess-user", "绑定 ZZZZ2222")).reply_text
    assert reply == "邀请码不正确，请核对后重新发送（不区分大小写）。"
    assert snapshot(demo) == before


async def test_an_already_bound_user_is_told_so_and_the_code_stays_unused(
        tmp_path, database_url, demo, service, capsys):
    [code] = invite(tmp_path, database_url, capsys, "--unit", "CX", "--role", "成员")
    before = snapshot(demo)
    reply = (await service.wecom.text("demo-liaison", f"绑定 {code}")).reply_text
    assert reply.startswith("你已经绑定在「城东实验小学」（张联络），不需要再绑定。")
    assert snapshot(demo) == before and invites(demo)[code].used_at is None


async def test_a_second_code_for_a_person_who_bound_meanwhile_is_refused(
        tmp_path, database_url, demo, service, capsys):
    csv = f"{PEOPLE_HEADER}\n,郑老师,,,13912340000,CX-ZX,成员\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "p.csv", csv))) == 0
    first, second = invite(tmp_path, database_url, capsys, "--unit", "CX-ZX", "--role", "成员",
                           "--person", "13912340000", "--count", "2")
    assert "绑定成功" in (await service.wecom.text("zheng-phone", f"绑定 {first}")).reply_text
    before = snapshot(demo)
    reply = (await service.wecom.text("zheng-laptop", f"绑定 {second}")).reply_text
    assert reply == "这个邀请码对应的人员已绑定了其他企业微信账号，请联系管理员核实。"
    assert snapshot(demo) == before and bound(demo, "zheng-laptop") is None


async def test_an_unbound_user_gets_the_unbound_reply_for_anything_else(demo, service):
    for text in ("你好", "上报隐患", "绑定"):
        reply = (await service.wecom.text("stranger", text)).reply_text
        if text == "绑定":
            assert "邀请码" in reply and UNBOUND not in reply  # the usage, not a refusal
        else:
            assert reply.startswith(f"你好！{UNBOUND}")
    assert bound(demo, "stranger") is None


def test_many_codes_are_printed_one_per_line_and_all_differ(tmp_path, database_url, demo,
                                                            capsys):
    codes = invite(tmp_path, database_url, capsys, "--unit", "JYJ", "--role", "safety_officer",
                   "--name", "丙", "--count", "25")
    assert len(set(codes)) == 25
    stored = invites(demo)
    assert set(stored) == set(codes)
    assert {(i.role, i.name, i.person_id) for i in stored.values()} == \
        {("safety_officer", "丙", None)}


@pytest.mark.parametrize("args, message", [
    (["--unit", "NOPE", "--role", "成员"], "单位编码「NOPE」不存在"),
    (["--unit", "CD-SY", "--role", "校长"], "角色「校长」不正确"),
    (["--unit", "CD-SY", "--role", "成员", "--count", "0"], "数量应为 1 到 500"),
    (["--unit", "CD-SY", "--role", "成员", "--count", "501"], "数量应为 1 到 500"),
    (["--unit", "CD-SY", "--role", "成员", "--days", "0"], "有效天数应为 1 到 90"),
    (["--unit", "CD-SY", "--role", "成员", "--days", "91"], "有效天数应为 1 到 90"),
    (["--unit", "CD-SY", "--role", "成员", "--person", "13999999999"],
     "「城东实验小学」没有手机为 13999999999 的人员"),
    (["--unit", "CD-SY", "--role", "成员", "--person", "13800000007"],
     "李校长（手机 13800000007）已绑定企业微信账号"),
])
def test_a_bad_invite_request_is_refused_in_chinese_and_makes_no_code(
        tmp_path, database_url, demo, capsys, args, message):
    assert run_cli(tmp_path, database_url, "invite", *args) == 1
    captured = capsys.readouterr()
    assert f"错误：{message}" in captured.err and captured.out == ""
    assert invites(demo) == {}
