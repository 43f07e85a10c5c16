"""The AI bot's images: short-lived (5 min) AES-encrypted URLs, fetched and stored at once.

AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes. The key is the
callback's EncodingAESKey in callback mode and the image's own ``aeskey`` on the long
connection. A plain image is stored by content hash (``bot.photos.store_bytes``) and
registered as a stored photo; one that cannot be had (expired, unreachable, not decryptable) is
logged and counted, and the sender is asked to send it again.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.aibot.inbound import ImageRef
from bot.clock import Clock
from bot.db import Database
from bot.photos import store_bytes
from models import photo

log = logging.getLogger(__name__)
MAX_IMAGE_BYTES = 20 * 1024 * 1024
BLOCK = 32
_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
               (b"GIF8", "image/gif"), (b"BM", "image/bmp"))


class MediaError(Exception):
    """An image that could not be fetched or decrypted."""


def decode_key(aeskey: str) -> bytes:
    """A base64 AES key (the image's ``aeskey``, or an EncodingAESKey without its "=")."""
    text = "".join(aeskey.split())
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("aeskey is not base64") from None
    if len(key) != 32:
        raise MediaError("aeskey must decode to 32 bytes")
    return key


def _cipher(key: bytes) -> Cipher:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def decrypt(data: bytes, key: bytes) -> bytes:
    if not data or len(data) % 16:
        raise MediaError("ciphertext length is not a multiple of the block size")
    decryptor = _cipher(key).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
        raise MediaError("bad padding")
    return plain[:-pad]


def encrypt(data: bytes, key: bytes) -> bytes:
    """What WeCom does to an image (the sandbox serves images this way)."""
    pad = BLOCK - len(data) % BLOCK
    encryptor = _cipher(key).encryptor()
    return encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()


def sniff(content: bytes) -> str:
    for magic, kind in _SIGNATURES:
        if content.startswith(magic):
            return kind
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class MediaFetcher:
    def __init__(self, *, http: aiohttp.ClientSession, db: Database, clock: Clock,
                 data_dir: Path, timeout_s: float = 15.0) -> None:
        self.http, self.db, self.clock, self.data_dir = http, db, clock, data_dir
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def store_all(self, images: tuple[ImageRef, ...], *, key: bytes | None, userid: str,
                        msg_key: str) -> tuple[list[int], int]:
        """(stored photo ids, how many images failed)."""
        results = await asyncio.gather(*(self._store(i, n, key, userid, msg_key)
                                         for n, i in enumerate(images)))
        ids = [r for r in results if r is not None]
        return ids, len(results) - len(ids)

    async def _store(self, image: ImageRef, n: int, key: bytes | None, userid: str,
                     msg_key: str) -> int | None:
        try:
            own = decode_key(image.aeskey) if image.aeskey else key
            if own is None:
                raise MediaError("no key for this image")
            content = decrypt(await self._download(image.url), own)
        except (MediaError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("AI bot image %s of message %s not stored: %s", n, msg_key,
                        exc or type(exc).__name__)
            return None
        kind = sniff(content)
        digest, path = await asyncio.to_thread(store_bytes, self.data_dir, content, kind)
        return await self.db.run(photo.register_stored, key=f"aibot:{msg_key}:{n}"[:200],
                                 userid=userid, sha256=digest, path=path, content_type=kind,
                                 size=len(content), now=self.clock.now())

    async def _download(self, url: str) -> bytes:
        async with self.http.get(url, timeout=self.timeout) as resp:
            if resp.status != 200:  # an expired URL answers 4xx
                raise MediaError(f"HTTP {resp.status} (expired?)")
            chunks, size = [], 0
            async for chunk in resp.content.iter_chunked(65536):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise MediaError("image too large")
                chunks.append(chunk)
        return b"".join(chunks)
