"""``safebot import``: units and people from CSV/XLSX, through the real command line."""
from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.cli import main
from bot.db import Database
from models.org import Person, PersonRole, Unit

UNITS_HEADER = "单位编码,单位名称,类型,上级单位编码"
PEOPLE_HEADER = "企业微信账号,姓名,职务,办公电话,手机,单位编码,角色"
UNITS_CSV = f"""{UNITS_HEADER}
QX,青溪区教育局,教育局,
QX-XS,溪山镇中心校,中心校,QX
QX-XS-XX,溪山小学,学校,QX-XS
QX-XS-YEY,溪山幼儿园,幼儿园,QX-XS
"""
PEOPLE_CSV = f"""{PEOPLE_HEADER}
qx-chief,钱科长,安全科科长,0571-1234567,13911110001,QX,安全专员、管理员
,孙校长,校长,,139 1111 0002,QX-XS-XX,组长
,周老师,,,,QX-XS-XX,联络员；成员
"""


def run_cli(tmp_path: Path, database_url: str, *args: str) -> int:
    # the fixture names the driver (postgresql+psycopg://); a config file names the database
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    command, *rest = args
    return main([command, "--config", str(config), *rest])


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def snapshot(db: Database) -> tuple:
    """Every unit, person and role as plain tuples, to compare before and after."""
    def read(*, session):
        units = sorted((u.id, u.code, u.name, u.kind, u.parent_id)
                       for u in session.exec(select(Unit)).all())
        people = sorted((p.id, p.userid, p.name, p.title, p.office_phone, p.mobile, p.unit_id)
                        for p in session.exec(select(Person)).all())
        roles = sorted((r.person_id, r.role) for r in session.exec(select(PersonRole)).all())
        return units, people, roles
    return db.call(read)


def units_by_code(db: Database) -> dict[str, Unit]:
    return db.call(lambda *, session: {u.code: u for u in session.exec(select(Unit)).all()})


def person_named(db: Database, name: str) -> tuple[Person, set[str]]:
    def read(*, session):
        person = session.exec(select(Person).where(Person.name == name)).one()
        roles = set(session.exec(select(PersonRole.role)
                                 .where(PersonRole.person_id == person.id)).all())
        return person, roles
    return db.call(read)


def test_a_units_csv_then_a_people_csv_create_the_district(tmp_path, database_url, db, capsys):
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "u.csv", UNITS_CSV))) == 0
    assert "单位：新增 4 个，更新 0 个，无变化 0 个" in capsys.readouterr().out
    assert run_cli(tmp_path, database_url, "import",
                   str(write(tmp_path, "p.csv", PEOPLE_CSV))) == 0
    out = capsys.readouterr().out
    assert "人员：新增 3 人，更新 0 人，无变化 0 人，新增角色 5 个" in out
    assert "2 人尚未绑定企业微信账号" in out

    units = units_by_code(db)
    assert units["QX"].parent_id is None and units["QX"].kind == "bureau"
    assert units["QX-XS"].parent_id == units["QX"].id and units["QX-XS"].kind == "township"
    assert units["QX-XS-XX"].parent_id == units["QX-XS"].id
    assert units["QX-XS-YEY"].kind == "kindergarten"
    chief, chief_roles = person_named(db, "钱科长")
    assert (chief.userid, chief.title, chief.office_phone, chief.mobile, chief.unit_id) == \
        ("qx-chief", "安全科科长", "0571-1234567", "13911110001", units["QX"].id)
    assert chief_roles == {"safety_officer", "admin"}
    principal, principal_roles = person_named(db, "孙校长")
    assert principal.userid is None and principal.mobile == "13911110002"
    assert principal_roles == {"leader"}
    assert person_named(db, "周老师")[1] == {"liaison", "member"}


def test_an_xlsx_with_a_people_sheet_before_the_units_sheet_imports_units_first(
        tmp_path, database_url, db, capsys):
    book = Workbook()
    people = book.active
    people.title = "人员"
    people.append([" 姓名 ", "单位编码", "角色", "企业微信账号", "手机", "职务", "办公电话"])
    people.append(["孙校长", "QX-XS-XX", "组长 成员", None, 13911110002, "校长", None])
    people.append([None] * 7)  # a blank row in the middle is skipped
    people.append(["钱科长", "QX", "安全专员", "qx-chief", "13911110001", None, "0571-1"])
    units = book.create_sheet("单位")
    units.append(["类型", "单位名称", "单位编码", "上级单位编码"])
    units.append(["学校", "溪山小学", "QX-XS-XX", "QX-XS"])  # parent defined further down
    units.append(["中心校", "溪山镇中心校", "QX-XS", "QX"])
    units.append(["教育局", "青溪区教育局", "QX", None])
    book.create_sheet("空白")  # an empty sheet is ignored
    path = tmp_path / "org.xlsx"
    book.save(path)

    assert run_cli(tmp_path, database_url, "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "单位：新增 3 个" in out and "人员：新增 2 人" in out
    codes = units_by_code(db)
    assert codes["QX-XS-XX"].parent_id == codes["QX-XS"].id
    principal, roles = person_named(db, "孙校长")
    assert principal.mobile == "13911110002"  # a number cell, not "13911110002.0"
    assert principal.unit_id == codes["QX-XS-XX"].id and roles == {"leader", "member"}
    assert person_named(db, "钱科长")[0].userid == "qx-chief"


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_a_csv_in_gb18030_or_utf8_with_or_without_bom_is_read(
        tmp_path, database_url, db, capsys, encoding):
    path = write(tmp_path, "units.csv", UNITS_CSV.replace(",", " , "), encoding)
    assert run_cli(tmp_path, database_url, "import", str(path)) == 0
    assert units_by_code(db)["QX-XS"].name == "溪山镇中心校"


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(
        tmp_path, database_url, db, capsys):
    book = Workbook()
    units = book.active
    units.title = "单位"
    for row in [UNITS_HEADER.split(","),
                ["QX", "青溪区教育局", "教育局", None],        # 2 fine
                ["QX-A", "甲校", "大学", "QX"],               # 3 unknown kind
                ["QX-B", "乙校", "学校", None],               # 4 missing parent
                ["QX-C", "丙校", "学校", "NOPE"],             # 5 unknown parent
                ["QX-A", "丁校", "学校", "QX"],               # 6 duplicate code
                [None, "戊校", "学校", "QX"],                 # 7 missing code
                ["QX-D", "甲校", "学校", "QX"],               # 8 duplicate name
                ["QX-E", "己校", "学校", "QX-F"],             # 9 cycle
                ["QX-F", "庚校", "学校", "QX-E"],             # 10 cycle
                [None] * 4,                                   # 11 blank, still counted
                ["QX-G", "辛校", "学校", "QX-G"]]:            # 12 its own parent
        units.append(row)
    people = book.create_sheet("人员")
    for row in [PEOPLE_HEADER.split(","),
                ["u1", "甲", None, None, "13911110001", "QX", "组长"],      # 2 fine
                ["u1", "乙", None, None, None, "QX", "成员"],               # 3 duplicate userid
                [None, "丙", None, None, "1391111", "QX", "成员"],          # 4 short mobile
                [None, "丁", None, None, None, "ZZ", "成员"],               # 5 unknown unit
                [None, "戊", None, None, None, "QX", "校长、成员"],         # 6 unknown role
                [None, None, None, None, None, "QX", "成员"],               # 7 missing name
                [None, "己", None, None, None, "QX", None],                 # 8 missing role
                [None, "甲", None, None, "13911110001", "QX", "成员"],      # 9 same mobile
                [None, "庚", None, None, None, "QX", "成员"],
                [None, "庚", None, None, None, "QX", "成员"],               # 11 same name
                [None, "辛", "职" * 51, None, None, "QX", "成员"]]:         # 12 too long
        people.append(row)
    odd = book.create_sheet("其他")
    odd.append(["编号", "名称"])
    odd.append(["1", "x"])
    path = tmp_path / "bad.xlsx"
    book.save(path)
    before = snapshot(db)

    assert run_cli(tmp_path, database_url, "import", str(path)) == 1
    err = capsys.readouterr().err
    expected = [
        "bad.xlsx「单位」第 3 行：类型「大学」不正确",
        "bad.xlsx「单位」第 3 行：单位名称「甲校」与单位 QX-D 重名",
        "bad.xlsx「单位」第 4 行：学校必须填写「上级单位编码」",
        "bad.xlsx「单位」第 5 行：上级单位编码「NOPE」不存在",
        "bad.xlsx「单位」第 6 行：单位编码「QX-A」与第 3 行重复",
        "bad.xlsx「单位」第 7 行：「单位编码」不能为空",
        "bad.xlsx「单位」第 8 行：单位名称「甲校」与单位 QX-A 重名",
        "bad.xlsx「单位」第 9 行：上级单位形成了循环：QX-E → QX-F → QX-E",
        "bad.xlsx「单位」第 10 行：上级单位形成了循环：QX-F → QX-E → QX-F",
        "bad.xlsx「单位」第 12 行：上级单位形成了循环：QX-G → QX-G",
        "bad.xlsx「人员」第 3 行：企业微信账号「u1」与第 2 行重复",
        "bad.xlsx「人员」第 4 行：手机「1391111」不是 11 位数字",
        "bad.xlsx「人员」第 5 行：单位编码「ZZ」不存在",
        "bad.xlsx「人员」第 6 行：角色「校长」不正确",
        "bad.xlsx「人员」第 7 行：「姓名」不能为空",
        "bad.xlsx「人员」第 8 行：「角色」不能为空",
        "bad.xlsx「人员」第 9 行：同一单位的手机「13911110001」与第 2 行重复",
        "bad.xlsx「人员」第 11 行：同一单位的姓名「庚」与第 10 行重复",
        "bad.xlsx「人员」第 12 行：「职务」太长，最多 50 个字",
        "bad.xlsx「其他」：无法识别表头（编号,名称）",
    ]
    for line in expected:
        assert line in err
    assert "没有导入任何数据" in err
    assert err.count("\n· ") == len(expected)
    assert capsys.readouterr().out == ""
    assert snapshot(db) == before


def test_rows_that_clash_with_the_database_are_refused(tmp_path, database_url, demo, capsys):
    before = snapshot(demo)
    csv = f"""{PEOPLE_HEADER}
demo-duty,李校长,,,13800000007,CD-SY,组长
other-id,张联络,,,13800000009,CD-SY,成员
,新老师,,,,NOPE,成员
cxzx-duty,林值班,,,,CX-ZX,值班人员
,林值班二,,,13800000015,CX-ZX,成员
"""
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "p.csv", csv))) == 1
    err = capsys.readouterr().err
    assert "p.csv 第 2 行：企业微信账号「demo-duty」已绑定到另一个人（孙值班）" in err
    assert "p.csv 第 3 行：张联络 已绑定企业微信账号「demo-liaison」，与表中填写的不一致" in err
    assert "p.csv 第 4 行：单位编码「NOPE」不存在" in err
    assert "p.csv 第 6 行：与第 5 行对应系统中的同一个人（林值班）" in err
    assert err.count("\n· ") == 4
    assert snapshot(demo) == before

    units = f"{UNITS_HEADER}\nNEW,新学校,学校,CD\nCD-SY,城东实验小学,学校,NEW\nCD,城东镇中心校,中心校,CD-SY\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "u.csv", units))) == 1
    err = capsys.readouterr().err
    assert "u.csv 第 2 行：上级单位形成了循环：NEW → CD → CD-SY → NEW" in err
    assert snapshot(demo) == before

    renamed = f"{UNITS_HEADER}\nNEW,城西中学,学校,CX\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "n.csv", renamed))) == 1
    assert "单位名称「城西中学」与单位 CX-ZX 重名" in capsys.readouterr().err


def test_a_new_unit_may_hang_under_a_unit_already_in_the_database(
        tmp_path, database_url, demo, capsys):
    csv = f"{UNITS_HEADER}\nCD-NEW,城东新区小学,学校,CD\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "u.csv", csv))) == 0
    codes = units_by_code(demo)
    assert codes["CD-NEW"].parent_id == codes["CD"].id


def test_two_units_may_swap_names_in_one_import(tmp_path, database_url, demo, capsys):
    csv = f"{UNITS_HEADER}\nCD-SY,城西中学,学校,CD\nCX-ZX,城东实验小学,学校,CX\n"
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "u.csv", csv))) == 0
    assert "单位：新增 0 个，更新 2 个，无变化 0 个" in capsys.readouterr().out
    codes = units_by_code(demo)
    assert (codes["CD-SY"].name, codes["CX-ZX"].name) == ("城西中学", "城东实验小学")


def test_reimporting_the_same_file_is_idempotent(tmp_path, database_url, db, capsys):
    units, people = write(tmp_path, "u.csv", UNITS_CSV), write(tmp_path, "p.csv", PEOPLE_CSV)
    for path in (units, people):
        assert run_cli(tmp_path, database_url, "import", str(path)) == 0
    first = snapshot(db)
    capsys.readouterr()
    for path in (units, people):
        assert run_cli(tmp_path, database_url, "import", str(path)) == 0
    out = capsys.readouterr().out
    assert "单位：新增 0 个，更新 0 个，无变化 4 个" in out
    assert "人员：新增 0 人，更新 0 人，无变化 3 人，新增角色 0 个" in out
    assert snapshot(db) == first


def test_a_changed_file_updates_the_matching_rows_and_only_adds_roles(
        tmp_path, database_url, db, capsys):
    for name, text in (("u.csv", UNITS_CSV), ("p.csv", PEOPLE_CSV)):
        assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, name, text))) == 0
    ids = {p[2]: p[0] for p in snapshot(db)[1]}
    capsys.readouterr()
    units = f"{UNITS_HEADER}\nQX-XS-XX,溪山实验小学,学校,QX\n"
    people = f"""{PEOPLE_HEADER}
qx-chief,钱科长,副局长,,,QX,成员
sun-id,孙校长,校长,,13911110002,QX-XS-XX,副组长
,周老师,教师,,,QX-XS-XX,成员
"""
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "u2.csv", units))) == 0
    assert run_cli(tmp_path, database_url, "import", str(write(tmp_path, "p2.csv", people))) == 0
    out = capsys.readouterr().out
    assert "单位：新增 0 个，更新 1 个，无变化 0 个" in out
    assert "人员：新增 0 人，更新 3 人，无变化 0 人，新增角色 2 个" in out

    codes = units_by_code(db)
    assert codes["QX-XS-XX"].name == "溪山实验小学" and codes["QX-XS-XX"].parent_id == codes["QX"].id
    chief, chief_roles = person_named(db, "钱科长")
    assert chief.id == ids["钱科长"] and chief.title == "副局长"
    assert chief.mobile == "13911110001" and chief.office_phone == "0571-1234567"  # blanks keep
    assert chief_roles == {"safety_officer", "admin", "member"}
    principal, principal_roles = person_named(db, "孙校长")  # matched by unit + mobile
    assert principal.id == ids["孙校长"] and principal.userid == "sun-id"
    assert principal_roles == {"leader", "deputy"}
    teacher, _ = person_named(db, "周老师")  # matched by unit + name
    assert teacher.id == ids["周老师"] and teacher.title == "教师"


@pytest.mark.parametrize("name, content, message", [
    ("org.xls", b"x", "不支持「.xls」文件"),
    ("org.xlsx", b"not a zip file", "文件无法读取"),
    ("empty.csv", b"", "文件中没有任何数据"),
    ("dup.csv", "单位编码,单位编码,单位名称\n".encode(), "表头中有重复的列：单位编码"),
])
def test_a_file_that_is_not_a_table_is_refused(tmp_path, database_url, db, capsys,
                                               name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    assert run_cli(tmp_path, database_url, "import", str(path)) == 1
    assert message in capsys.readouterr().err
    assert snapshot(db) == ([], [], [])


def test_a_missing_file_is_refused(tmp_path, database_url, db, capsys):
    assert run_cli(tmp_path, database_url, "import", str(tmp_path / "nope.csv")) == 1
    assert "找不到文件" in capsys.readouterr().err
