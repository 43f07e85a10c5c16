"""Self-checks (自查): a person walks one checklist area item by item and answers 是 / 否 /
不适用; each 否 may become a hazard (source ``self_check``).

A run is stored when it starts, every answer as it is given (re-answering an item replaces
the earlier answer), so a restart or a 取消 loses nothing. A run ends ``finished`` (every item
answered) or ``abandoned`` (cancelled, or left open when the same person starts another).
Only finished runs count in the statistics.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, func, update
from sqlmodel import Field, Session, SQLModel, select

from models.base import upsert_statement, utc_field
from models.hazard import Hazard


class RunStatus(StrEnum):
    OPEN = "open"
    FINISHED = "finished"
    ABANDONED = "abandoned"


class Answer(StrEnum):
    YES = "yes"  # 是: the item is in order
    NO = "no"    # 否: a problem was found
    NA = "na"    # 不适用


class SelfCheckRun(SQLModel, table=True):
    __tablename__ = "selfcheck_run"
    __table_args__ = (Index("ix_selfcheck_run_unit_status", "unit_id", "status", "finished_at"),
                      # a period's finished runs of a whole district (统计)
                      Index("ix_selfcheck_run_finished", "finished_at", "status", "unit_id"))
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    area: str = Field(max_length=32)  # checklist area key
    started_at: datetime = utc_field()
    finished_at: datetime | None = utc_field(default=None)
    status: str = Field(default=RunStatus.OPEN, max_length=16)


class SelfCheckAnswer(SQLModel, table=True):
    __tablename__ = "selfcheck_answer"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_selfcheck_answer_item"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="selfcheck_run.id")
    item_id: str = Field(max_length=64)  # checklist item id
    answer: str = Field(max_length=8)
    note: str = Field(default="", max_length=500)
    hazard_id: int | None = Field(default=None, foreign_key="hazard.id")  # what a 否 became
    answered_at: datetime = utc_field()


def start_run(*, session: Session, unit_id: int, person_id: int, area: str,
              now: datetime) -> SelfCheckRun:
    """A new open run; the person's earlier runs still open are abandoned (one at a time)."""
    session.execute(update(SelfCheckRun)
                    .where(SelfCheckRun.person_id == person_id,
                           SelfCheckRun.status == RunStatus.OPEN)
                    .values(status=RunStatus.ABANDONED))
    run = SelfCheckRun(unit_id=unit_id, person_id=person_id, area=area, started_at=now,
                       status=RunStatus.OPEN)
    session.add(run)
    session.flush()
    return run


def record_answer(*, session: Session, run_id: int, item_id: str, answer: Answer, note: str,
                  now: datetime, hazard_id: int | None = None) -> None:
    """Store the answer to one item, replacing an earlier answer to it (one statement)."""
    table = SelfCheckAnswer.__table__
    values = {"run_id": run_id, "item_id": item_id, "answer": answer.value, "note": note,
              "hazard_id": hazard_id, "answered_at": now}
    stmt = upsert_statement(table, session.get_bind().dialect.name, tuple(values),
                            conflict=("run_id", "item_id"),
                            update=("answer", "note", "hazard_id", "answered_at"))
    session.connection().execute(stmt, values)


def finish_run(*, session: Session, run_id: int, now: datetime) -> SelfCheckRun:
    run = session.get(SelfCheckRun, run_id)
    run.status, run.finished_at = RunStatus.FINISHED, now
    return run


def runs_for_unit(*, session: Session, unit_id: int, since: datetime,
                  until: datetime | None = None) -> int:
    """How many runs the unit finished from ``since`` (to ``until``, exclusive)."""
    query = select(func.count()).select_from(SelfCheckRun).where(
        SelfCheckRun.unit_id == unit_id, SelfCheckRun.status == RunStatus.FINISHED,
        SelfCheckRun.finished_at >= since)
    if until is not None:
        query = query.where(SelfCheckRun.finished_at < until)
    return session.exec(query).one()


def get_run_answers(*, session: Session, run_id: int) -> list[SelfCheckAnswer]:
    return list(session.exec(select(SelfCheckAnswer).where(SelfCheckAnswer.run_id == run_id)
                             .order_by(SelfCheckAnswer.id)).all())


def abandon_run(*, session: Session, run_id: int) -> int:
    """Mark an open run abandoned; return how many answers it keeps."""
    session.execute(update(SelfCheckRun)
                    .where(SelfCheckRun.id == run_id, SelfCheckRun.status == RunStatus.OPEN)
                    .values(status=RunStatus.ABANDONED))
    return len(get_run_answers(session=session, run_id=run_id))


def summarise_run(*, session: Session, run_id: int) -> dict[str, Any]:
    """Counts of each answer, the numbers of the hazards filed, and the 否 left unfiled."""
    answers = get_run_answers(session=session, run_id=run_id)
    counts = Counter(a.answer for a in answers)
    ids = [a.hazard_id for a in answers if a.hazard_id is not None]
    numbers = list(session.exec(select(Hazard.number).where(Hazard.id.in_(ids))
                                .order_by(Hazard.id)).all()) if ids else []
    return {"yes": counts[Answer.YES], "no": counts[Answer.NO], "na": counts[Answer.NA],
            "numbers": numbers, "unfiled": counts[Answer.NO] - len(ids)}
