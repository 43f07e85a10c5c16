"""Photos people send (image messages): registered when they arrive, fetched in the background
through ``media/get`` (a media id lives three days) and stored by content hash."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, select

from models.base import as_utc, insert_ignore, utc_field

PENDING, STORED, FAILED = "pending", "stored", "failed"
MEDIA_LIFETIME = timedelta(days=3)


class Photo(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    media_id: str = Field(max_length=200, unique=True)
    userid: str = Field(max_length=64, index=True)
    status: str = Field(default=PENDING, max_length=16)
    sha256: str | None = Field(default=None, max_length=64, index=True)
    path: str | None = Field(default=None, max_length=200)  # relative to the data directory
    content_type: str = Field(default="", max_length=100)
    size: int = Field(default=0)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = utc_field()
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = utc_field()
    stored_at: datetime | None = utc_field(default=None)


def register(*, session: Session, media_ids: tuple[str, ...], userid: str,
             now: datetime) -> list[int]:
    """Record photos to fetch (a retried callback registers nothing twice); their ids."""
    for media_id in media_ids:
        insert_ignore(session, Photo.__table__, {
            "media_id": media_id, "userid": userid, "status": PENDING, "attempts": 0,
            "next_attempt_at": now, "last_error": "", "created_at": now, "size": 0,
            "content_type": ""})
    rows = session.exec(select(Photo.id, Photo.media_id).where(Photo.media_id.in_(media_ids)))
    ids = dict((m, i) for i, m in rows)
    return [ids[m] for m in media_ids]


def register_stored(*, session: Session, key: str, userid: str, sha256: str, path: str,
                    content_type: str, size: int, now: datetime) -> int:
    """Record a photo already downloaded and stored (the AI bot's images arrive as short-lived
    URLs, fetched at once); ``key`` stands in for the media id, so a redelivery adds nothing."""
    insert_ignore(session, Photo.__table__, {
        "media_id": key, "userid": userid, "status": STORED, "sha256": sha256, "path": path,
        "content_type": content_type, "size": size, "attempts": 1, "next_attempt_at": now,
        "last_error": "", "created_at": now, "stored_at": now})
    return session.exec(select(Photo.id).where(Photo.media_id == key)).one()


def due(*, session: Session, now: datetime, limit: int = 20) -> list[Photo]:
    return list(session.exec(select(Photo).where(Photo.status == PENDING,
                                                 Photo.next_attempt_at <= now)
                             .order_by(Photo.id).limit(limit)).all())


def mark_stored(*, session: Session, photo_id: int, sha256: str, path: str, content_type: str,
                size: int, now: datetime) -> None:
    session.execute(update(Photo).where(Photo.id == photo_id).values(
        status=STORED, sha256=sha256, path=path, content_type=content_type, size=size,
        stored_at=now, last_error=""))


def mark_attempt_failed(*, session: Session, photo_id: int, error: str, now: datetime,
                        permanent: bool) -> None:
    photo = session.get(Photo, photo_id)
    photo.attempts += 1
    photo.last_error = error[:300]
    expired = as_utc(photo.created_at) + MEDIA_LIFETIME < now
    if permanent or expired:
        photo.status = FAILED
    else:
        photo.next_attempt_at = now + min(timedelta(seconds=10 * 2 ** photo.attempts),
                                          timedelta(hours=1))


def get(*, session: Session, photo_id: int) -> Photo | None:
    return session.get(Photo, photo_id)
