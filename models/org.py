"""Organisation: units as a tree (bureau → township central school → school), people, roles.

The roles are the leading-group table of seed 002 (组长, 副组长, 成员, 联络员) plus duty staff,
the bureau's safety officers and admins. A school's principal is its 组长.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, UniqueConstraint, bindparam
from sqlmodel import Field, Session, SQLModel, select

from models.base import in_ids, read_cache, utc_field, utc_now


class UnitKind(StrEnum):
    BUREAU = "bureau"              # 区教育局
    TOWNSHIP = "township"          # 镇中心校
    SCHOOL = "school"              # 学校
    KINDERGARTEN = "kindergarten"  # 幼儿园


UNIT_KIND_NAMES = {"教育局": UnitKind.BUREAU, "中心校": UnitKind.TOWNSHIP,
                   "学校": UnitKind.SCHOOL, "幼儿园": UnitKind.KINDERGARTEN}


class Role(StrEnum):
    LEADER = "leader"                  # 组长 (a school's principal)
    DEPUTY = "deputy"                  # 副组长
    MEMBER = "member"                  # 成员
    LIAISON = "liaison"                # 联络员
    DUTY = "duty"                      # 值班人员
    SAFETY_OFFICER = "safety_officer"  # the bureau's safety officer
    ADMIN = "admin"                    # 管理员


ROLE_NAMES = {"组长": Role.LEADER, "副组长": Role.DEPUTY, "成员": Role.MEMBER,
              "联络员": Role.LIAISON, "值班人员": Role.DUTY, "安全专员": Role.SAFETY_OFFICER,
              "管理员": Role.ADMIN}
ROLE_LABELS = {role: name for name, role in ROLE_NAMES.items()}
LEADERS = frozenset({Role.LEADER, Role.DEPUTY, Role.SAFETY_OFFICER, Role.ADMIN})


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=100, unique=True)
    kind: str = Field(max_length=16)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    userid: str | None = Field(default=None, max_length=64, unique=True)  # None until bound
    name: str = Field(max_length=50)
    title: str = Field(default="", max_length=50)         # 职务
    office_phone: str = Field(default="", max_length=32)  # 办公电话
    mobile: str = Field(default="", max_length=32)        # 手机
    unit_id: int = Field(foreign_key="unit.id", index=True)
    created_at: datetime = utc_field(default_factory=utc_now)


class PersonRole(SQLModel, table=True):
    __tablename__ = "person_role"
    __table_args__ = (UniqueConstraint("person_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: str = Field(max_length=32)


@dataclass(frozen=True)
class Identity:
    """Who a WeCom user is to safebot: loaded once per message."""

    person_id: int
    userid: str
    name: str
    unit_id: int
    unit_name: str
    unit_kind: str
    roles: frozenset[str]

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)


@functools.cache
def _identity_query() -> Select:
    """Built once: constructing a statement costs more than running it on a small table."""
    return (select(Person.id, Person.name, Unit.id, Unit.name, Unit.kind, PersonRole.role)
            .join(Unit, Unit.id == Person.unit_id)
            .outerjoin(PersonRole, PersonRole.person_id == Person.id)
            .where(Person.userid == bindparam("userid")))


def get_identity(*, session: Session, userid: str) -> Identity | None:
    """One Core round trip (a row per role): this runs for every message."""
    rows = session.connection().execute(_identity_query(), {"userid": userid}).all()
    if not rows:
        return None
    person_id, name, unit_id, unit_name, unit_kind, _ = rows[0]
    return Identity(person_id=person_id, userid=userid, name=name, unit_id=unit_id,
                    unit_name=unit_name, unit_kind=unit_kind,
                    roles=frozenset(r[5] for r in rows if r[5] is not None))


def unit_by_code(*, session: Session, code: str) -> Unit | None:
    return session.exec(select(Unit).where(Unit.code == code)).first()


def unit_chain(*, session: Session, unit_id: int) -> list[Unit]:
    """The unit and its ancestors, nearest first (school, township, bureau)."""
    cache = read_cache(session)
    if cache is not None:
        if "units" not in cache:  # every unit, once
            cache["units"] = {u.id: u for u in session.exec(select(Unit)).all()}
        get = cache["units"].get
    else:
        def get(id_: int) -> Unit | None:
            return session.get(Unit, id_)
    chain: list[Unit] = []
    current = get(unit_id)
    while current is not None and len(chain) < 16:
        chain.append(current)
        current = get(current.parent_id) if current.parent_id else None
    return chain


def unit_and_descendants(*, session: Session, unit_id: int) -> list[Unit]:
    """The unit and every unit below it, each unit followed by its own subtree (siblings by
    code): the order a district's ledger lists them in. One query per level of the tree."""
    root = session.get(Unit, unit_id)
    if root is None:
        return []
    children: dict[int, list[Unit]] = {}
    seen, frontier = {root.id}, [root.id]
    while frontier:
        level = [u for u in session.exec(select(Unit).where(in_ids(Unit.parent_id, frontier))
                                         .order_by(Unit.code)).all() if u.id not in seen]
        for unit in level:
            children.setdefault(unit.parent_id, []).append(unit)
            seen.add(unit.id)
        frontier = [u.id for u in level]
    ordered, stack = [], [root]
    while stack:
        unit = stack.pop()
        ordered.append(unit)
        stack.extend(reversed(children.get(unit.id, [])))
    return ordered


def add_role(*, session: Session, person_id: int, role: str) -> None:
    exists = session.exec(select(PersonRole).where(PersonRole.person_id == person_id,
                                                   PersonRole.role == role)).first()
    if exists is None:
        session.add(PersonRole(person_id=person_id, role=role))


def admins_for(*, session: Session, userid: str) -> tuple[Person | None, list[str]]:
    """The person behind ``userid`` and the admins nearest to their unit (up the chain)."""
    person = session.exec(select(Person).where(Person.userid == userid)).first()
    if person is None:
        return None, []
    for unit in unit_chain(session=session, unit_id=person.unit_id):
        admins = session.exec(
            select(Person.userid).join(PersonRole, PersonRole.person_id == Person.id)
            .where(Person.unit_id == unit.id, PersonRole.role == Role.ADMIN,
                   Person.userid.is_not(None), Person.userid != userid)).all()
        if admins:
            return person, sorted(admins)
    return person, []


def userids_with_roles(*, session: Session, unit_id: int, roles: frozenset[str] | set[str]
                       ) -> list[str]:
    """Bound people of ``unit_id`` holding any of ``roles``."""
    cache = read_cache(session)
    if cache is not None:
        if "roles" not in cache:  # every bound person's roles, once
            table: dict[tuple[int, str], set[str]] = {}
            for unit, role, userid in session.exec(
                    select(Person.unit_id, PersonRole.role, Person.userid)
                    .join(PersonRole, PersonRole.person_id == Person.id)
                    .where(Person.userid.is_not(None))).all():
                table.setdefault((unit, role), set()).add(userid)
            cache["roles"] = table
        return sorted(set().union(*(cache["roles"].get((unit_id, r), ()) for r in roles)))
    rows = session.exec(
        select(Person.userid).join(PersonRole, PersonRole.person_id == Person.id)
        .where(Person.unit_id == unit_id, PersonRole.role.in_(roles),
               Person.userid.is_not(None)).distinct()).all()
    return sorted(rows)


def person_by_name(*, session: Session, unit_id: int, name: str) -> Person | None:
    return session.exec(select(Person).where(Person.unit_id == unit_id,
                                             Person.name == name)).first()
