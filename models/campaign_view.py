"""What ``阶段`` shows and which deliverable ``提交`` means, as plain data for the templates."""
from __future__ import annotations

import unicodedata
from datetime import date

from sqlmodel import Session

from models import campaign as cp
from models.org import Unit, UnitKind, unit_and_descendants

LATE_DAYS = 30  # a campaign that ended this recently still takes (late) submissions


def item_data(item: cp.Deliverable, today: date) -> dict:
    return {"id": item.id, "name": item.name, "month": item.month, "due": item.due,
            "note": item.note, "days_left": (item.due - today).days}


def overview(*, session: Session, unit_id: int, today: date) -> list[dict]:
    """Running campaigns covering the unit (or units below it): the phase now, every
    deliverable with the unit's own submission and, for a township or the bureau, how many
    units below have submitted."""
    unit = session.get(Unit, unit_id)
    below = ([u.id for u in unit_and_descendants(session=session, unit_id=unit_id)[1:]]
             if unit.kind in (UnitKind.TOWNSHIP, UnitKind.BUREAU) else [])
    out = []
    for c in cp.active(session=session, today=today):
        covered = cp.covered_unit_ids(session=session, campaign=c)
        own, scope = unit_id in covered, covered.intersection(below)
        if not own and not scope:
            continue
        phases = cp.phases(session=session, campaign_id=c.id)
        names = {p.id: p.name for p in phases}
        items = cp.deliverables(session=session, campaign_id=c.id)
        done = cp.latest_submissions(session=session, unit_id=unit_id,
                                     deliverable_ids=[i.id for i in items]) if own else {}
        rows = []
        for item in items:
            row = {**item_data(item, today), "phase": names.get(item.phase_id, ""),
                   "submitted_at": done.get(item.id), "progress": None}
            if scope:
                got = cp.submitted_units(session=session, deliverable_id=item.id)
                row["progress"] = len(got & scope)
            rows.append(row)
        current = [p for p in phases if p.starts_on <= today <= p.ends_on]
        upcoming = [p for p in phases if p.starts_on > today][:1]
        out.append({"name": c.name, "own": own, "scope": len(scope), "deliverables": rows,
                    "current": [_phase(p) for p in current],
                    "next": [_phase(p) for p in upcoming] if not current else []})
    return out


def _phase(p: cp.CampaignPhase) -> dict:
    return {"name": p.name, "start": p.starts_on, "end": p.ends_on, "summary": p.summary}


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def pick(*, session: Session, unit_id: int, today: date, args: str) -> dict:
    """The deliverable ``提交 <args>`` names, and the note after it.

    ``args`` starts with a deliverable's number (as ``阶段`` shows it) or its name, whole or
    in part. Several months of one deliverable: the next one due that the unit has not
    submitted (else the latest one missing, else the nearest). Answer: ``{"item", "note"}``,
    or ``{"choices"}`` when the words fit several, or ``{"open"}`` when they fit none.
    """
    pool: list[tuple[cp.Deliverable, cp.Campaign]] = []
    for c in cp.active(session=session, today=today, grace_days=LATE_DAYS):
        if unit_id in cp.covered_unit_ids(session=session, campaign=c):
            pool += [(i, c) for i in cp.deliverables(session=session, campaign_id=c.id)]
    done = cp.latest_submissions(session=session, unit_id=unit_id,
                                 deliverable_ids=[i.id for i, _ in pool])
    head, _, rest = args.partition(" ")
    number = head.lstrip("#").removeprefix("编号")
    if number.isascii() and number.isdigit():  # "፩" passes isdigit() but not int()
        found = [(i, c) for i, c in pool if i.id == int(number)]
    else:
        found = [(i, c) for i, c in pool if _norm(args).startswith(_norm(i.name))]
        if found:
            name = max((i.name for i, _ in found), key=len)
            found = [(i, c) for i, c in found if i.name == name]
            rest = args[len(name):].strip() if args.startswith(name) else rest
        else:
            found = [(i, c) for i, c in pool if head and _norm(head) in _norm(i.name)]
    if not found:
        return {"open": [_with_campaign(i, c, today, done) for i, c in pool if i.id not in done]}
    if len({(i.campaign_id, i.name) for i, _ in found}) > 1:
        return {"choices": [_with_campaign(i, c, today, done) for i, c in found]}
    missing = [(i, c) for i, c in found if i.id not in done]
    upcoming = [(i, c) for i, c in missing if i.due >= today]
    item, campaign = (min(upcoming, key=lambda x: x[0].due) if upcoming
                      else max(missing, key=lambda x: x[0].due) if missing
                      else min(found, key=lambda x: abs((x[0].due - today).days)))
    return {"item": _with_campaign(item, campaign, today, done), "note": rest.strip()}


def _with_campaign(item: cp.Deliverable, campaign: cp.Campaign, today: date,
                   done: dict) -> dict:
    return {**item_data(item, today), "campaign": campaign.name,
            "submitted_at": done.get(item.id)}
