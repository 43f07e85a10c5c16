"""Saving an inspection: the record, one hazard per finding, and who is told — one transaction.

The inspected unit's liaisons (and, after a visit from above, its principal) get the list of
hazards to plan; a major finding alerts its supervisors at once, like a reported one.
"""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.render import Renderer
from handlers.hazard_common import Notices, facts, supervisors
from models import hazard_flow
from models import inspection as insp
from models.checklist import Checklists
from models.hazard import Level
from models.org import Identity, Role, Unit, unit_chain, userids_with_roles

SOURCES = {insp.Kind.INSPECTION: "inspection", insp.Kind.SUPERVISION: "supervisor"}


def file_inspection(*, session: Session, who: Identity, data: dict, now: datetime, year: int,
                    checklists: Checklists, notices: Notices, renderer: Renderer) -> dict:
    kind = insp.Kind(data["kind"])
    unit = session.get(Unit, data["unit"])
    record = insp.record(session=session, unit_id=unit.id, person_id=who.person_id, kind=kind,
                         announced=data["announced"], content=data["content"], at=now,
                         photo_ids=data["photos"])
    area_names = {c.key: c.name for c in checklists.all()}
    filed: list[dict] = []
    for finding in data["findings"]:
        area = (checklists.suggest_area(finding["description"])
                or checklists.suggest_area(data["content"]))
        hazard = hazard_flow.create(
            session=session, unit_id=unit.id, reporter=who, now=now, year=year,
            description=finding["description"],
            location=finding["location"] or renderer.render("inspection/no_location.txt.j2"),
            area=area.key if area else "", level=Level.MAJOR if finding["major"] else
            Level.GENERAL, photo_ids=finding["photos"], source=SOURCES[kind])
        insp.add_finding(session=session, inspection_id=record.id,
                         text=finding["description"], hazard_id=hazard.id)
        info = facts(session, hazard, area_names)
        filed.append(info)
        if hazard.level == Level.MAJOR:
            alerted = [u for u in supervisors(session, unit_chain(session=session,
                                                                  unit_id=unit.id),
                                              include_own=True) if u != who.userid]
            notices.card(session=session, template="hazard/major_alert.card.json.j2",
                         key=f"major:{hazard.id}", to=alerted, now=now, urgent=True, **info)
    told: list[str] = []
    if filed:
        roles = {Role.LIAISON} if kind == insp.Kind.INSPECTION else {Role.LIAISON, Role.LEADER}
        told = [u for u in userids_with_roles(session=session, unit_id=unit.id, roles=roles)
                if u != who.userid]
        notices.text(session=session, template="inspection/findings_notice.txt.j2",
                     key=f"inspection:{record.id}", to=told, now=now, kind=kind,
                     announced=record.announced, unit=unit.name, inspector=who.name,
                     inspector_unit=who.unit_name, content=record.content, hazards=filed)
    return {"kind": kind, "unit": unit.name, "announced": record.announced,
            "content": record.content, "hazards": filed, "told": len(told),
            "photos": len(record.photo_ids)}
