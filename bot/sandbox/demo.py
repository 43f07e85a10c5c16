"""The demo district the sandbox (and the tests) start with: a bureau, two township central
schools, four schools and kindergartens, and people in every role."""
from __future__ import annotations

from sqlmodel import Session, select

from models.org import Person, Role, Unit, UnitKind, add_role

# code, name, kind, parent code
UNITS = [
    ("JYJ", "示范区教育局", UnitKind.BUREAU, None),
    ("CD", "城东镇中心校", UnitKind.TOWNSHIP, "JYJ"),
    ("CX", "城西镇中心校", UnitKind.TOWNSHIP, "JYJ"),
    ("CD-SY", "城东实验小学", UnitKind.SCHOOL, "CD"),
    ("CD-YEY", "城东中心幼儿园", UnitKind.KINDERGARTEN, "CD"),
    ("CX-ZX", "城西中学", UnitKind.SCHOOL, "CX"),
    ("CX-YEY", "城西幼儿园", UnitKind.KINDERGARTEN, "CX"),
]

# userid, name, title, unit code, roles
PEOPLE = [
    ("demo-bureau", "周安全", "安全科科长", "JYJ", [Role.SAFETY_OFFICER, Role.MEMBER]),
    ("demo-admin", "郑管理", "办公室副主任", "JYJ", [Role.ADMIN, Role.LIAISON]),
    ("jyj-leader", "吴局长", "局长", "JYJ", [Role.LEADER]),
    ("cd-leader", "王中心", "中心校校长", "CD", [Role.LEADER]),
    ("cd-liaison", "钱联络", "安全办干事", "CD", [Role.LIAISON, Role.SAFETY_OFFICER]),
    ("cx-leader", "冯中心", "中心校校长", "CX", [Role.LEADER]),
    ("cx-liaison", "陈联络", "安全办干事", "CX", [Role.LIAISON]),
    ("demo-principal", "李校长", "校长", "CD-SY", [Role.LEADER]),
    ("cdsy-deputy", "赵副校长", "副校长", "CD-SY", [Role.DEPUTY]),
    ("demo-liaison", "张联络", "安全办主任", "CD-SY", [Role.LIAISON, Role.MEMBER]),
    ("demo-duty", "孙值班", "总务处干事", "CD-SY", [Role.DUTY]),
    ("cdyey-leader", "刘园长", "园长", "CD-YEY", [Role.LEADER]),
    ("cdyey-liaison", "何联络", "保健老师", "CD-YEY", [Role.LIAISON, Role.DUTY]),
    ("cxzx-leader", "杨校长", "校长", "CX-ZX", [Role.LEADER]),
    ("cxzx-liaison", "黄联络", "安全办主任", "CX-ZX", [Role.LIAISON]),
    ("cxzx-duty", "林值班", "保卫干事", "CX-ZX", [Role.DUTY]),
    ("cxyey-leader", "徐园长", "园长", "CX-YEY", [Role.LEADER]),
    ("cxyey-liaison", "马联络", "教师", "CX-YEY", [Role.LIAISON]),
]
DEMO_USERIDS = ("demo-liaison", "demo-principal", "demo-duty", "demo-bureau", "demo-admin")


def seed_demo(*, session: Session) -> bool:
    """Create the demo district unless units exist already; True if it was created."""
    if session.exec(select(Unit.id)).first() is not None:
        return False
    units: dict[str, Unit] = {}
    for code, name, kind, parent in UNITS:
        unit = Unit(code=code, name=name, kind=kind, parent_id=units[parent].id if parent else None)
        session.add(unit)
        session.flush()
        units[code] = unit
    for i, (userid, name, title, unit_code, roles) in enumerate(PEOPLE):
        person = Person(userid=userid, name=name, title=title, unit_id=units[unit_code].id,
                        mobile=f"1380000{i:04d}", office_phone=f"0519-8800{i:04d}")
        session.add(person)
        session.flush()
        for role in roles:
            add_role(session=session, person_id=person.id, role=role)
    return True
