"""Who may do what with a hazard, from the sender's unit and roles and the hazard's unit chain.

- see: the hazard's own unit, and the units above it (township, bureau);
- plan, rectify, ask for an extension: the hazard's own unit (not duty-only staff);
- review, approve an extension: the unit's leaders for a general hazard, or leaders and safety
  officers of a unit above; a major hazard only above the school (seed 001: 挂牌督办);
- reopen a closed hazard: a leader of the unit or above.
"""
from __future__ import annotations

from models.hazard import Hazard, Level
from models.org import Identity, Role

UNIT_WORKERS = frozenset({Role.LEADER, Role.DEPUTY, Role.LIAISON, Role.MEMBER, Role.ADMIN})
UNIT_LEADERS = frozenset({Role.LEADER, Role.DEPUTY})
SUPERVISORS = frozenset({Role.LEADER, Role.DEPUTY, Role.SAFETY_OFFICER})
REOPENERS = frozenset({Role.LEADER, Role.DEPUTY, Role.SAFETY_OFFICER, Role.ADMIN})


def can_see(who: Identity, chain: list[int]) -> bool:
    """``chain``: the hazard's unit id and its ancestors' ids, nearest first."""
    return who.unit_id in chain


def can_work_on(who: Identity, hazard: Hazard) -> bool:
    return who.unit_id == hazard.unit_id and who.has_any(UNIT_WORKERS)


def _above(who: Identity, chain: list[int]) -> bool:
    return who.unit_id in chain[1:]


def can_review(who: Identity, hazard: Hazard, chain: list[int]) -> bool:
    if _above(who, chain) and who.has_any(SUPERVISORS):
        return True
    return (hazard.level == Level.GENERAL and who.unit_id == hazard.unit_id
            and who.has_any(UNIT_LEADERS))


can_decide_extension = can_review


def can_reopen(who: Identity, chain: list[int]) -> bool:
    return can_see(who, chain) and who.has_any(REOPENERS)
