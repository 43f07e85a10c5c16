"""The people the sandbox page lets you be: everyone bound to a WeCom userid, from the DB."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlmodel import Session, select

from bot.sandbox.demo import DEMO_USERIDS
from models.org import ROLE_LABELS, Person, PersonRole, Role, Unit

_ROLE_ORDER = {role: i for i, role in enumerate(Role)}


@dataclass(frozen=True)
class SandboxPerson:
    userid: str
    name: str
    title: str
    unit: str
    roles: list[str]  # Chinese labels, e.g. ["联络员", "成员"]
    featured: bool    # one of the demo's main characters

    def as_dict(self) -> dict:
        return asdict(self)


def list_people(*, session: Session) -> list[SandboxPerson]:
    """Featured demo characters first (in DEMO_USERIDS order), then by unit and person."""
    rows = session.exec(select(Person, Unit).join(Unit, Unit.id == Person.unit_id)
                        .where(Person.userid.is_not(None))
                        .order_by(Unit.id, Person.id)).all()
    roles: dict[int, list[str]] = {}
    for person_id, role in session.exec(select(PersonRole.person_id, PersonRole.role)).all():
        roles.setdefault(person_id, []).append(role)
    people = [SandboxPerson(userid=p.userid, name=p.name, title=p.title, unit=u.name,
                            roles=_labels(roles.get(p.id, [])),
                            featured=p.userid in DEMO_USERIDS)
              for p, u in rows]
    rank = {userid: i for i, userid in enumerate(DEMO_USERIDS)}
    return sorted(people, key=lambda p: rank.get(p.userid, len(rank)))  # stable


def _labels(roles: list[str]) -> list[str]:
    known = sorted((Role(r) for r in roles if r in _ROLE_ORDER), key=_ROLE_ORDER.__getitem__)
    return [ROLE_LABELS[r] for r in known] + sorted(r for r in roles if r not in _ROLE_ORDER)


def group_by_unit(people: list[SandboxPerson]) -> list[tuple[str, list[SandboxPerson]]]:
    """Non-featured people grouped by unit, units in first-seen order (for ``<optgroup>``)."""
    groups: dict[str, list[SandboxPerson]] = {}
    for person in people:
        if not person.featured:
            groups.setdefault(person.unit, []).append(person)
    return list(groups.items())
