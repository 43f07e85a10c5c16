"""Callback ids already handled: WeCom delivers a callback up to three times."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from models.base import insert_ignore, utc_field


class ProcessedCallback(SQLModel, table=True):
    __tablename__ = "processed_callback"
    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = utc_field(index=True)


def first_time(*, session: Session, key: str, now: datetime) -> bool:
    """Record ``key``; True only for the first delivery, however many arrive at once."""
    return insert_ignore(session, ProcessedCallback.__table__, {"key": key, "received_at": now})
