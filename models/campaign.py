"""Campaigns (专项行动): phases with dates, and the deliverables each covered unit owes.

A campaign is written as a data file (``models/campaigns/*.toml``, read by
``models.campaign_file``) and lives in the database once ``safebot campaign load FILE`` has
loaded it. ``units`` says whom it covers: ``["all"]`` (every unit below the bureau), unit kinds
(``school``, ``kindergarten``, ``township``) and/or unit codes. A monthly deliverable is stored
as one row per month (``series`` is the file's key, ``month`` is YYYYMM), so every row has one
due date and one set of submissions.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, func
from sqlmodel import Field, Session, SQLModel, select

from models.base import as_utc, utc_field
from models.org import Unit, UnitKind

ALL = "all"
KINDS = frozenset({UnitKind.SCHOOL, UnitKind.KINDERGARTEN, UnitKind.TOWNSHIP})


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    source: str = Field(default="", max_length=300)  # the document it comes from
    units: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_on: date
    ends_on: date
    loaded_at: datetime = utc_field()


class CampaignPhase(SQLModel, table=True):
    __tablename__ = "campaign_phase"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="uq_campaign_phase_name"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    seq: int
    name: str = Field(max_length=50)
    starts_on: date
    ends_on: date
    summary: str = Field(default="", max_length=500)  # what the phase is for


class Deliverable(SQLModel, table=True):
    __tablename__ = "campaign_deliverable"
    __table_args__ = (UniqueConstraint("campaign_id", "key", name="uq_campaign_deliverable_key"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    phase_id: int = Field(foreign_key="campaign_phase.id")
    key: str = Field(max_length=64)
    series: str = Field(max_length=64)  # the file's key: the same for each month of a series
    month: int = Field(default=0)       # YYYYMM for a monthly deliverable, else 0
    name: str = Field(max_length=100)
    due: date = Field(index=True)
    note: str = Field(default="", max_length=500)  # what to hand in, to whom


class Submission(SQLModel, table=True):
    __tablename__ = "campaign_submission"
    __table_args__ = (Index("ix_campaign_submission_deliverable_unit", "deliverable_id",
                            "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    deliverable_id: int = Field(foreign_key="campaign_deliverable.id")
    unit_id: int = Field(foreign_key="unit.id")
    person_id: int = Field(foreign_key="person.id")
    submitted_at: datetime = utc_field()
    text: str = Field(default="", max_length=1000)
    photo_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    files: int = Field(default=0)  # files sent with it (WeCom file messages)


def covered_unit_ids(*, session: Session, campaign: Campaign) -> set[int]:
    """The units owing this campaign's deliverables."""
    kinds = set(KINDS) if ALL in campaign.units else {u for u in campaign.units if u in KINDS}
    codes = [u for u in campaign.units if u != ALL and u not in KINDS]
    rows = session.exec(select(Unit.id).where(Unit.kind.in_(kinds) | Unit.code.in_(codes)))
    return set(rows.all())


def active(*, session: Session, today: date, grace_days: int = 0) -> list[Campaign]:
    """Campaigns running on ``today`` (or ended at most ``grace_days`` ago)."""
    rows = session.exec(select(Campaign).where(
        Campaign.starts_on <= today, Campaign.ends_on >= today - timedelta(days=grace_days))
        .order_by(Campaign.starts_on, Campaign.id))
    return list(rows.all())


def phases(*, session: Session, campaign_id: int) -> list[CampaignPhase]:
    return list(session.exec(select(CampaignPhase).where(CampaignPhase.campaign_id == campaign_id)
                             .order_by(CampaignPhase.seq)).all())


def deliverables(*, session: Session, campaign_id: int) -> list[Deliverable]:
    return list(session.exec(select(Deliverable).where(Deliverable.campaign_id == campaign_id)
                             .order_by(Deliverable.due, Deliverable.id)).all())


def due_on(*, session: Session, days: set[date]) -> list[tuple[Deliverable, Campaign]]:
    rows = session.exec(select(Deliverable, Campaign)
                        .join(Campaign, Campaign.id == Deliverable.campaign_id)
                        .where(Deliverable.due.in_(days)).order_by(Deliverable.id))
    return list(rows.all())


def submitted_units(*, session: Session, deliverable_id: int) -> set[int]:
    rows = session.exec(select(Submission.unit_id)
                        .where(Submission.deliverable_id == deliverable_id).distinct())
    return set(rows.all())


def latest_submissions(*, session: Session, unit_id: int,
                       deliverable_ids: list[int]) -> dict[int, datetime]:
    """When ``unit_id`` last submitted each deliverable (those it has submitted)."""
    if not deliverable_ids:
        return {}
    rows = session.exec(select(Submission.deliverable_id, func.max(Submission.submitted_at))
                        .where(Submission.unit_id == unit_id,
                               Submission.deliverable_id.in_(deliverable_ids))
                        .group_by(Submission.deliverable_id))
    return {d: as_utc(at) for d, at in rows.all()}


def record_submission(*, session: Session, deliverable_id: int, unit_id: int, person_id: int,
                      now: datetime, text: str, photo_ids: list[int]) -> Submission:
    row = Submission(deliverable_id=deliverable_id, unit_id=unit_id, person_id=person_id,
                     submitted_at=now.astimezone(timezone.utc),  # SQLite keeps wall time
                     text=text, photo_ids=list(photo_ids))
    session.add(row)
    session.flush()
    return row


def add_to_submission(*, session: Session, submission_id: int, photo_ids: list[int] = (),
                      files: int = 0, text: str = "") -> dict[str, Any]:
    """Photos, files or a further note sent after ``提交``; what the submission now holds."""
    row = session.get(Submission, submission_id)
    row.photo_ids = [*row.photo_ids, *photo_ids]
    row.files += files
    if text:
        row.text = (f"{row.text}\n{text}" if row.text else text)[:1000]
    return {"photos": len(row.photo_ids), "files": row.files}
