"""What the hazard handlers share: finding a hazard the sender may see, the facts every message
about it shows, and the pushes its moves cause (enqueued in the same transaction)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.pushes import enqueue_text
from bot.render import Renderer
from models import hazard as hz
from models import outbox
from models.hazard_access import can_see
from models.org import Identity, Person, Role, Unit, UnitKind, unit_chain, userids_with_roles

LEVEL_NAMES = hz.LEVEL_NAMES


@dataclass
class Found:
    hazard: hz.Hazard
    chain: list[int]      # the hazard's unit and the units above it, nearest first
    units: list[Unit]


def find_visible(*, session: Session, number: str | None, who: Identity) -> Found | None:
    """The hazard, if it exists *and* the sender may see it (others get no hint it exists)."""
    if number is None:
        return None
    hazard = hz.by_number(session=session, number=number)
    if hazard is None:
        return None
    units = unit_chain(session=session, unit_id=hazard.unit_id)
    chain = [u.id for u in units]
    return Found(hazard, chain, units) if can_see(who, chain) else None


def facts(session: Session, hazard: hz.Hazard, area_names: dict[str, str]) -> dict[str, Any]:
    """The template data for a hazard: plain values, names resolved."""
    unit = session.get(Unit, hazard.unit_id)
    reporter = session.get(Person, hazard.reporter_id)
    return {
        "number": hazard.number, "unit": unit.name, "description": hazard.description,
        "location": hazard.location, "area": area_names.get(hazard.area, hazard.area),
        "level": hazard.level, "level_name": LEVEL_NAMES.get(hazard.level, hazard.level),
        "status": hazard.status, "reporter": reporter.name if reporter else "",
        "reported_at": hazard.reported_at, "department": hazard.department,
        "responsible": hazard.responsible, "measures": hazard.measures,
        "funds": hazard.funds, "deadline": hazard.deadline, "contingency": hazard.contingency,
        "review_result": hazard.review_result, "extension_deadline": hazard.extension_deadline,
        "extension_reason": hazard.extension_reason, "source": hazard.source,
    }


def supervisors(session: Session, units: list[Unit], *, include_own: bool) -> list[str]:
    """Who watches this unit's major hazards: its principal, the township's leaders and safety
    officers, the bureau's safety officers (seed 001: 挂牌督办)."""
    people: list[str] = []
    for i, unit in enumerate(units):
        if i == 0:
            roles = {Role.LEADER} if include_own else set()
        elif unit.kind == UnitKind.TOWNSHIP:
            roles = {Role.LEADER, Role.SAFETY_OFFICER}
        else:
            roles = {Role.SAFETY_OFFICER}
        if roles:
            people += [u for u in userids_with_roles(session=session, unit_id=unit.id,
                                                     roles=roles) if u not in people]
    return people


class Notices:
    """Renders and enqueues the pushes caused by hazard moves (alerts are urgent)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def card(self, *, session: Session, template: str, key: str, to: list[str], now: datetime,
             urgent: bool, **data: Any) -> int:
        added = 0
        for i, userid in enumerate(to):
            body = json.loads(self.renderer.render(template, task_id=f"{key}-{i}".replace(":", "-"),
                                                   **data))
            added += outbox.enqueue(session=session, key=f"{key}:{userid}", recipient=userid,
                                    msgtype="template_card", payload=body, now=now,
                                    urgent=urgent)
        return added

    def text(self, *, session: Session, template: str, key: str, to: list[str], now: datetime,
             urgent: bool = False, **data: Any) -> int:
        text = self.renderer.render(template, **data)
        return sum(enqueue_text(session=session, key=f"{key}:{userid}", to=userid, text=text,
                                now=now, urgent=urgent) for userid in to)
