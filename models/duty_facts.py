"""What the duty handlers, sweeps and checks share: the plain facts of a shift for templates,
finding a person by name or userid, and who is told at each step."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.base import as_utc
from models.duty import KIND_LABELS, Shift
from models.org import Person, Role, Unit, unit_chain, userids_with_roles


def facts(session: Session, shift: Shift) -> dict[str, Any]:
    """Template data for a shift: names resolved, times aware UTC (templates show them local)."""
    unit = session.get(Unit, shift.unit_id)
    person = session.get(Person, shift.person_id)
    leader = session.get(Person, shift.leader_id) if shift.leader_id else None
    return {"shift_id": shift.id, "unit_id": unit.id, "unit": unit.name, "unit_code": unit.code, "day": shift.day,
            "kind": shift.kind, "kind_label": KIND_LABELS.get(shift.kind, shift.kind),
            "start": as_utc(shift.start_at), "end": as_utc(shift.end_at),
            "person": person.name if person else "", "person_userid": person.userid if person else None,
            "mobile": (person.mobile or person.office_phone) if person else "",
            "leader": leader.name if leader else "",
            "leader_mobile": (leader.mobile or leader.office_phone) if leader else "",
            "checked_in_at": as_utc(shift.checked_in_at), "location": shift.checkin_location,
            "closed_at": as_utc(shift.closed_at), "close_note": shift.close_note,
            "handover_note": shift.handover_note}


class PersonNotFound(LookupError):
    def __init__(self, text: str, candidates: list[str]) -> None:
        super().__init__(text)
        self.text, self.candidates = text, candidates  # several: the name is ambiguous


def find_person(session: Session, unit_ids: list[int], text: str) -> Person:
    """A person of the first of ``unit_ids`` that has one, by userid or by name."""
    for unit_id in unit_ids:
        rows = session.exec(select(Person).where(Person.unit_id == unit_id)
                            .order_by(Person.id)).all()
        by_id = [p for p in rows if p.userid == text]
        by_name = [p for p in rows if p.name == text]
        found = by_id or by_name
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise PersonNotFound(text, [f"{p.name}（{p.userid or p.mobile}）" for p in found])
    raise PersonNotFound(text, [])


def principals(session: Session, unit_id: int) -> list[str]:
    return userids_with_roles(session=session, unit_id=unit_id, roles={Role.LEADER})


def leader_on_duty(session: Session, shift: Shift | None) -> list[str]:
    """The leader on duty's userid, or the unit's principal when the slot has none."""
    if shift is None:
        return []
    leader = session.get(Person, shift.leader_id) if shift.leader_id else None
    if leader is not None and leader.userid:
        return [leader.userid]
    return principals(session, shift.unit_id)


def bureau_officers(session: Session, unit_id: int) -> list[str]:
    """The safety officers of the bureau above (or at) the unit."""
    people: list[str] = []
    for unit in unit_chain(session=session, unit_id=unit_id):
        if unit.parent_id is None:
            people += userids_with_roles(session=session, unit_id=unit.id,
                                         roles={Role.SAFETY_OFFICER})
    return people


def nearest_admins(session: Session, unit_id: int) -> list[str]:
    """The unit's admins, else those of the nearest unit above that has any."""
    for unit in unit_chain(session=session, unit_id=unit_id):
        admins = userids_with_roles(session=session, unit_id=unit.id, roles={Role.ADMIN})
        if admins:
            return admins
    return []


def roster_keepers(session: Session, unit_id: int) -> list[str]:
    """Who looks after a unit's roster: its admins, liaisons and principal (else the nearest
    admins above)."""
    own = userids_with_roles(session=session, unit_id=unit_id,
                             roles={Role.ADMIN, Role.LIAISON, Role.LEADER})
    return own or nearest_admins(session, unit_id)


def userid_of(session: Session, person_id: int | None) -> str | None:
    person = session.get(Person, person_id) if person_id else None
    return person.userid if person else None
