"""One-time invite codes: ``safebot invite`` makes them, ``绑定 <邀请码>`` redeems one."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Field, Session, SQLModel, select

from models.base import as_utc, utc_field, utc_now
from models.org import Person, Unit, add_role

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


class InviteCode(SQLModel, table=True):
    __tablename__ = "invite_code"
    code: str = Field(primary_key=True, max_length=16)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: str = Field(max_length=32)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    name: str = Field(default="", max_length=50)  # for a person not imported yet
    created_at: datetime = utc_field(default_factory=utc_now)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(default=None)
    used_by: str | None = Field(default=None, max_length=64)


class BindOutcome(StrEnum):
    BOUND = "bound"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    ALREADY_BOUND = "already_bound"       # this WeCom user is bound already
    PERSON_TAKEN = "person_taken"         # the invited person is bound to another WeCom user


@dataclass(frozen=True)
class BindResult:
    outcome: BindOutcome
    unit_name: str = ""
    role: str = ""
    name: str = ""


def normalise_code(text: str) -> str:
    return "".join(text.split()).upper()


def create_invites(*, session: Session, unit_id: int, role: str, count: int = 1,
                   person_id: int | None = None, name: str = "", valid_days: int = 7,
                   now: datetime) -> list[InviteCode]:
    invites = []
    for _ in range(count):
        code = _new_code(session)
        invite = InviteCode(code=code, unit_id=unit_id, role=role, person_id=person_id,
                            name=name, created_at=now,
                            expires_at=now + timedelta(days=valid_days))
        session.add(invite)
        invites.append(invite)
    session.flush()
    return invites


def _new_code(session: Session) -> str:
    """A code not in use: 31^8 ≈ 8.5e11 codes make a clash rare, not impossible."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if session.get(InviteCode, code) is None:
            return code


def redeem_invite(*, session: Session, code: str, userid: str, now: datetime) -> BindResult:
    """Bind ``userid`` to the invite's unit and role; changes nothing unless it succeeds."""
    if session.exec(select(Person.id).where(Person.userid == userid)).first() is not None:
        return BindResult(BindOutcome.ALREADY_BOUND)
    invite = session.get(InviteCode, normalise_code(code), with_for_update=True)
    if invite is None:
        return BindResult(BindOutcome.UNKNOWN)
    if invite.used_at is not None:
        return BindResult(BindOutcome.USED)
    if as_utc(invite.expires_at) < now:
        return BindResult(BindOutcome.EXPIRED)
    if invite.person_id is not None:
        person = session.get(Person, invite.person_id)
        if person.userid:
            return BindResult(BindOutcome.PERSON_TAKEN)
        person.userid = userid
    else:
        person = Person(userid=userid, name=invite.name or userid, unit_id=invite.unit_id)
        session.add(person)
        session.flush()
    add_role(session=session, person_id=person.id, role=invite.role)
    invite.used_at, invite.used_by = now, userid
    unit = session.get(Unit, invite.unit_id)
    return BindResult(BindOutcome.BOUND, unit_name=unit.name, role=invite.role, name=person.name)
