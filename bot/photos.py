"""Fetching photos from WeCom in the background and storing them by content hash.

The request path only registers a photo (a row); this fetcher downloads it through
``media/get`` soon after, retrying while WeCom is unavailable, and writes it once under
``<data_dir>/photos/<aa>/<sha256><ext>`` (the same picture sent twice is stored once).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import os
from pathlib import Path

from bot.clock import Clock
from bot.db import Database
from bot.wecom_api import WeComAPI, WeComError, WeComUnavailable
from models import photo

log = logging.getLogger(__name__)


def store_bytes(data_dir: Path, content: bytes, content_type: str) -> tuple[str, str]:
    """Write ``content`` by its hash; (sha256, path relative to ``data_dir``)."""
    digest = hashlib.sha256(content).hexdigest()
    ext = mimetypes.guess_extension(content_type) or ".bin"
    relative = Path("photos") / digest[:2] / f"{digest}{ext}"
    target = data_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)  # atomic: a reader never sees half a photo
    return digest, relative.as_posix()


class PhotoFetcher:
    def __init__(self, *, db: Database, api: WeComAPI, clock: Clock, data_dir: Path,
                 idle_s: float = 5.0) -> None:
        self.db, self.api, self.clock, self.data_dir, self.idle_s = db, api, clock, data_dir, idle_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                fetched = await self.fetch_due()
            except Exception:
                log.exception("photo fetch round failed")
                fetched = 0
            if not fetched:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)
                except asyncio.TimeoutError:
                    pass

    async def fetch_due(self) -> int:
        rows = await self.db.run(photo.due, now=self.clock.now())
        await asyncio.gather(*(self._fetch(row.id, row.media_id) for row in rows))
        return len(rows)

    async def _fetch(self, photo_id: int, media_id: str) -> None:
        try:
            media = await self.api.get_media(media_id)
        except (WeComError, WeComUnavailable) as exc:
            permanent = isinstance(exc, WeComError) and not exc.transient
            await self.db.run(photo.mark_attempt_failed, photo_id=photo_id, error=str(exc),
                              now=self.clock.now(), permanent=permanent)
            return
        digest, path = await asyncio.to_thread(store_bytes, self.data_dir, media.content,
                                               media.content_type)
        await self.db.run(photo.mark_stored, photo_id=photo_id, sha256=digest, path=path,
                          content_type=media.content_type, size=len(media.content),
                          now=self.clock.now())
