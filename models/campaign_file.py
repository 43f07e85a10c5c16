"""Campaign data files: ``parse_campaign`` checks one TOML file, ``load_campaign`` stores it.

The four campaigns of the seeds ship as examples in ``models/campaigns``. Every mistake is
reported with the file's name and where it is (``phase 2 (学习排查): ...``), and nothing is
stored. Loading a file again updates the campaign with the same ``key``: phases are matched by
name, deliverables by key; a deliverable someone has already submitted cannot be removed.
"""
from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from models.campaign import (ALL, KINDS, Campaign, CampaignPhase, Deliverable, Submission)
from models.org import Unit

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOP = {"key", "name", "source", "units", "phases"}
_PHASE = {"name", "start", "end", "summary", "deliverables"}
_DELIVERABLE = {"key", "name", "due", "recurring", "day", "note"}


class CampaignError(ValueError):
    """A campaign file is broken; the message names the file and what is wrong."""


@dataclass(frozen=True)
class DeliverableSpec:
    key: str
    series: str
    month: int
    name: str
    due: date
    note: str


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    start: date
    end: date
    summary: str
    deliverables: tuple[DeliverableSpec, ...]


@dataclass(frozen=True)
class CampaignSpec:
    file: str
    key: str
    name: str
    source: str
    units: tuple[str, ...]
    phases: tuple[PhaseSpec, ...]


def parse_campaign(file: str, text: str) -> CampaignSpec:
    def fail(problem: str) -> CampaignError:
        return CampaignError(f"{file}: {problem}")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML ({exc})") from None
    if unknown := sorted(set(data) - _TOP):
        raise fail(f"unknown field(s) {', '.join(unknown)}")
    for name in ("key", "name"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise fail(f"'{name}' is missing or empty")
    if not _KEY_RE.match(data["key"]) or len(data["key"]) > 64:
        raise fail(f"key {data['key']!r} must be lower-case ASCII letters, digits, - or _")
    units = data.get("units")
    if units == ALL:
        units = [ALL]
    if not isinstance(units, list) or not units or not all(
            isinstance(u, str) and u.strip() for u in units):
        raise fail("'units' must be \"all\" or a list of unit kinds "
                   f"({', '.join(sorted(KINDS))}) and unit codes")
    raw_phases = data.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise fail("no phases ([[phases]] with name, start and end)")
    phases = [_phase(fail, n, p) for n, p in enumerate(raw_phases, 1)]
    seen_phases: set[str] = set()
    seen_keys: set[str] = set()
    for n, phase in enumerate(phases, 1):
        if phase.name in seen_phases:
            raise fail(f"phase {n}: name {phase.name!r} is used twice")
        seen_phases.add(phase.name)
        if n > 1 and phase.start < phases[n - 2].start:
            raise fail(f"phase {n} ({phase.name}): starts before the phase above it")
        for d in phase.deliverables:
            if d.key in seen_keys:
                raise fail(f"deliverable key {d.key!r} is used twice")
            seen_keys.add(d.key)
    source = data.get("source", "")
    if not isinstance(source, str):
        raise fail("'source' must be a string")
    return CampaignSpec(file=file, key=data["key"], name=data["name"].strip(),
                        source=source.strip(), units=tuple(u.strip() for u in units),
                        phases=tuple(phases))


def _phase(fail, n: int, raw: object) -> PhaseSpec:
    if not isinstance(raw, dict):
        raise fail(f"phase {n} must be a table")
    where = f"phase {n}" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "")
    if unknown := sorted(set(raw) - _PHASE):
        raise fail(f"{where}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise fail(f"{where}: 'name' is missing or empty")
    for name in ("start", "end"):
        if type(raw.get(name)) is not date:  # a TOML local date: 2025-04-01
            raise fail(f"{where}: '{name}' must be a date like 2025-04-01")
    if raw["start"] > raw["end"]:
        raise fail(f"{where}: start {raw['start']} is after end {raw['end']}")
    items = raw.get("deliverables", [])
    if not isinstance(items, list):
        raise fail(f"{where}: 'deliverables' must be [[phases.deliverables]] tables")
    out: list[DeliverableSpec] = []
    for i, item in enumerate(items, 1):
        out += _deliverables(fail, f"{where}, deliverable {i}", item, raw["start"], raw["end"])
    return PhaseSpec(name=raw["name"].strip(), start=raw["start"], end=raw["end"],
                     summary=str(raw.get("summary", "")).strip(), deliverables=tuple(out))


def _deliverables(fail, where: str, raw: object, start: date, end: date
                  ) -> list[DeliverableSpec]:
    if not isinstance(raw, dict):
        raise fail(f"{where} must be a table")
    if unknown := sorted(set(raw) - _DELIVERABLE):
        raise fail(f"{where}: unknown field(s) {', '.join(unknown)}")
    key, name, note = raw.get("key"), raw.get("name"), raw.get("note", "")
    if not isinstance(key, str) or not _KEY_RE.match(key) or len(key) > 50:
        raise fail(f"{where}: key {key!r} must be lower-case ASCII letters, digits, - or _")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise fail(f"{where} ({key}): 'name' is missing, empty or longer than 100")
    if not isinstance(note, str) or len(note) > 500:
        raise fail(f"{where} ({key}): 'note' must be a string of at most 500 characters")
    common = {"series": key, "name": name.strip(), "note": note.strip()}
    recurring = raw.get("recurring")
    if recurring is None:
        if "day" in raw:
            raise fail(f"{where} ({key}): 'day' needs recurring = \"monthly\"")
        due = raw.get("due")
        if type(due) is not date:
            raise fail(f"{where} ({key}): 'due' must be a date like 2025-03-31 "
                       "(or recurring = \"monthly\" with a day)")
        if not start <= due <= end:
            raise fail(f"{where} ({key}): due {due} is outside the phase ({start} to {end})")
        return [DeliverableSpec(key=key, month=0, due=due, **common)]
    if recurring != "monthly" or "due" in raw:
        raise fail(f"{where} ({key}): recurring must be \"monthly\", without 'due'")
    day = raw.get("day")
    if type(day) is not int or not 1 <= day <= 31:
        raise fail(f"{where} ({key}): 'day' must be a day of the month, 1 to 31")
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        due = date(year, month, min(day, calendar.monthrange(year, month)[1]))
        if start <= due <= end:
            out.append(DeliverableSpec(key=f"{key}-{year}-{month:02d}",
                                       month=year * 100 + month, due=due, **common))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not out:
        raise fail(f"{where} ({key}): day {day} falls in no month of the phase")
    return out


def load_campaign(*, session: Session, spec: CampaignSpec, now: datetime) -> dict:
    """Create or update the campaign; what was done, for the CLI to print."""
    codes = [u for u in spec.units if u != ALL and u not in KINDS]
    known = set(session.exec(select(Unit.code).where(Unit.code.in_(codes))).all())
    if missing := [c for c in codes if c not in known]:
        raise CampaignError(f"{spec.file}: unknown unit code(s) {', '.join(missing)}")
    campaign = session.exec(select(Campaign).where(Campaign.key == spec.key)).first()
    created = campaign is None
    if campaign is None:
        campaign = Campaign(key=spec.key, name=spec.name, starts_on=spec.phases[0].start,
                            ends_on=spec.phases[0].end, loaded_at=now)
        session.add(campaign)
    campaign.name, campaign.source, campaign.units = spec.name, spec.source, list(spec.units)
    campaign.starts_on = min(p.start for p in spec.phases)
    campaign.ends_on = max(p.end for p in spec.phases)
    campaign.loaded_at = now
    session.flush()
    old_phases = {p.name: p for p in session.exec(
        select(CampaignPhase).where(CampaignPhase.campaign_id == campaign.id)).all()}
    old_items = {d.key: d for d in session.exec(
        select(Deliverable).where(Deliverable.campaign_id == campaign.id)).all()}
    keep_phases, keep_items = set(), set()
    for seq, p in enumerate(spec.phases, 1):
        phase = old_phases.get(p.name) or CampaignPhase(campaign_id=campaign.id, seq=seq,
                                                        name=p.name, starts_on=p.start,
                                                        ends_on=p.end)
        phase.seq, phase.starts_on, phase.ends_on, phase.summary = seq, p.start, p.end, p.summary
        session.add(phase)
        session.flush()
        keep_phases.add(p.name)
        for d in p.deliverables:
            row = old_items.get(d.key) or Deliverable(campaign_id=campaign.id, phase_id=phase.id,
                                                      key=d.key, series=d.series, name=d.name,
                                                      due=d.due)
            row.phase_id, row.series, row.month, row.name = phase.id, d.series, d.month, d.name
            row.due, row.note = d.due, d.note
            session.add(row)
            keep_items.add(d.key)
    gone = [d for k, d in old_items.items() if k not in keep_items]
    for row in gone:
        if session.exec(select(Submission.id).where(Submission.deliverable_id == row.id)).first():
            raise CampaignError(f"{spec.file}: deliverable {row.key!r} has submissions and "
                                "cannot be removed")
        session.delete(row)
    session.flush()
    for name, phase in old_phases.items():
        if name not in keep_phases:
            session.delete(phase)
    return {"key": spec.key, "name": spec.name, "created": created,
            "phases": len(spec.phases), "deliverables": len(keep_items), "removed": len(gone),
            "starts_on": campaign.starts_on, "ends_on": campaign.ends_on}
