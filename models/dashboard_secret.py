"""The dashboard's link-signing secret, when the configuration gives none.

The first instance to start writes a random secret; every later start, and every other
instance on the same database, reads the same row, so links survive restarts and any
instance can check a link another one signed.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from models.base import insert_ignore, utc_field

NAME = "dashboard"


class ServiceSecret(SQLModel, table=True):
    __tablename__ = "service_secret"
    name: str = Field(primary_key=True, max_length=32)
    value: str = Field(max_length=128)
    created_at: datetime = utc_field()


def get_or_create(*, session: Session, now: datetime, name: str = NAME) -> str:
    """The stored secret, made first if missing; a race between instances keeps one row."""
    insert_ignore(session, ServiceSecret.__table__,
                  {"name": name, "value": secrets.token_hex(32), "created_at": now})
    return session.get(ServiceSecret, name).value
