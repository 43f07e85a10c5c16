"""``safebot invite``: one-time invite codes for a unit and a role, checked before any is made.

With ``mobile`` the codes bind to that imported, not yet bound person of the unit; otherwise
redeeming one creates a new person named ``name`` (see ``models.invite.redeem_invite``).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.db import Database
from bot.render import Renderer
from models.invite import create_invites
from models.org import ROLE_NAMES, Person, Role, unit_by_code

MAX_COUNT = 500
MAX_DAYS = 90
NAME_LIMIT = 50


class InviteRequestError(Exception):
    """The request cannot be met; ``str()`` is a Chinese message for the admin."""

    def __init__(self, kind: str, **data: Any) -> None:
        self.kind = kind
        super().__init__(Renderer().render("cli/invite_error.txt.j2", kind=kind, **data))


def parse_role(text: str) -> Role:
    """A role by its Chinese name (组长) or its value (leader)."""
    text = text.strip()
    if text in ROLE_NAMES:
        return ROLE_NAMES[text]
    try:
        return Role(text.lower())
    except ValueError:
        raise InviteRequestError("unknown_role", role=text, allowed=list(ROLE_NAMES)) from None


def make_invites(db: Database, *, unit_code: str, role: str, name: str = "", mobile: str = "",
                 count: int = 1, days: int = 7, now: datetime) -> list[str]:
    role_value = parse_role(role)
    if not 1 <= count <= MAX_COUNT:
        raise InviteRequestError("bad_count", value=count, low=1, high=MAX_COUNT)
    if not 1 <= days <= MAX_DAYS:
        raise InviteRequestError("bad_days", value=days, low=1, high=MAX_DAYS)
    name = name.strip()
    if len(name) > NAME_LIMIT:
        raise InviteRequestError("name_too_long", limit=NAME_LIMIT)
    return db.call(_make, unit_code=unit_code.strip(), role=role_value, name=name,
                   mobile=re.sub(r"[\s-]", "", mobile), count=count, days=days, now=now)


def _make(*, session: Session, unit_code: str, role: Role, name: str, mobile: str, count: int,
          days: int, now: datetime) -> list[str]:
    unit = unit_by_code(session=session, code=unit_code)
    if unit is None:
        raise InviteRequestError("unknown_unit", code=unit_code)
    person_id = None
    if mobile:
        people = session.exec(select(Person).where(Person.unit_id == unit.id,
                                                   Person.mobile == mobile)
                              .order_by(Person.id)).all()
        if not people:
            raise InviteRequestError("unknown_person", unit=unit.name, mobile=mobile)
        unbound = [p for p in people if not p.userid]
        if not unbound:
            raise InviteRequestError("person_bound", name=people[0].name, mobile=mobile)
        person_id, name = unbound[0].id, ""
    invites = create_invites(session=session, unit_id=unit.id, role=role.value, count=count,
                             person_id=person_id, name=name, valid_days=days, now=now)
    return [invite.code for invite in invites]
