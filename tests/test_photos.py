"""Image messages: registered in the request, fetched through media/get, stored by hash."""
from __future__ import annotations

import asyncio
import hashlib

from sqlmodel import select

from bot.keys import photos_key
from models.photo import Photo


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def photos(db):
    return db.call(lambda session: list(session.exec(select(Photo).order_by(Photo.id)).all()))


async def test_an_image_message_is_fetched_and_stored_by_its_content_hash(service, fake_wecom,
                                                                          db, tmp_path):
    content = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    media_id = fake_wecom.add_media(content, "image/jpeg", "scene.jpg")
    delivery = await service.wecom.image("demo-liaison", media_id)
    assert delivery.status == 200
    await wait_for(lambda: photos(db) and photos(db)[0].status == "stored")
    [photo] = photos(db)
    digest = hashlib.sha256(content).hexdigest()
    assert photo.sha256 == digest and photo.size == len(content)
    assert (tmp_path / "data" / photo.path).read_bytes() == content
    assert photo.path == f"photos/{digest[:2]}/{digest}.jpg"

    again = fake_wecom.add_media(content, "image/jpeg", "same.jpg")  # same picture, new id
    await service.wecom.image("demo-liaison", again)
    await wait_for(lambda: len(photos(db)) == 2 and photos(db)[1].status == "stored")
    assert photos(db)[1].path == photo.path


async def test_an_unknown_media_id_fails_without_retrying_forever(service, fake_wecom, db):
    await service.wecom.image("demo-liaison", "MEDIA-does-not-exist")
    await wait_for(lambda: photos(db) and photos(db)[0].status == "failed")
    assert "40007" in photos(db)[0].last_error


async def test_a_photo_waits_out_a_wecom_outage(service, fake_wecom, db, clock):
    fake_wecom.faults.down = True
    media_id = fake_wecom.add_media(b"\x89PNG" + b"0" * 100, "image/png", "a.png")
    await service.wecom.image("demo-liaison", media_id)
    await wait_for(lambda: photos(db) and photos(db)[0].attempts >= 1)
    assert photos(db)[0].status == "pending"
    fake_wecom.faults.down = False
    photo_id = photos(db)[0].id

    def due_now(session):  # skip the backoff instead of waiting it out
        session.get(Photo, photo_id).next_attempt_at = clock.now()
    db.call(due_now)
    service.server.app[photos_key].wake()
    await wait_for(lambda: photos(db)[0].status == "stored")
