"""Dashboard links: signed, expiring, scoped. No passwords and no sessions.

A link carries ``t=<person>.<unit>.<expiry>.<signature>``: the person it was made for, the unit
whose subtree it shows (the scope) and when it stops working (Unix seconds), signed with
HMAC-SHA256 under the service's dashboard secret. Filters in the query string can only narrow
what the scope shows: the scope itself is inside the signed part, so editing it breaks the
signature.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

TTL = timedelta(hours=24)
_TOKEN = re.compile(r"^(\d{1,12})\.(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")


class LinkError(Exception):
    """The link cannot be used; ``reason`` is ``invalid`` or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    person_id: int
    unit_id: int
    expires: datetime
    token: str


class Signer:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the dashboard secret is empty")
        self._key = secret.encode()

    def _signature(self, person_id: int, unit_id: int, expires: int) -> str:
        message = f"safebot-dashboard-v1|{person_id}|{unit_id}|{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token(self, *, person_id: int, unit_id: int, expires: datetime) -> str:
        stamp = int(expires.timestamp())
        return f"{person_id}.{unit_id}.{stamp}.{self._signature(person_id, unit_id, stamp)}"

    def verify(self, token: str, *, now: datetime) -> Grant:
        """The grant a token carries; ``LinkError`` if it is altered or out of date."""
        match = _TOKEN.match(token or "")
        if match is None:
            raise LinkError("invalid")
        person_id, unit_id, stamp = (int(g) for g in match.groups()[:3])
        expected = self._signature(person_id, unit_id, stamp)
        if not hmac.compare_digest(expected, match.group(4)):
            raise LinkError("invalid")
        expires = datetime.fromtimestamp(stamp, timezone.utc)
        if now >= expires:
            raise LinkError("expired")
        return Grant(person_id=person_id, unit_id=unit_id, expires=expires, token=token)


class Links:
    """Makes the URL a leader is sent: ``<public_url>/dashboard/?t=...``."""

    def __init__(self, *, signer: Signer, public_url: str) -> None:
        self.signer, self.public_url = signer, public_url.rstrip("/")

    def url(self, *, person_id: int, unit_id: int, now: datetime) -> tuple[str, datetime]:
        expires = now + TTL
        token = self.signer.token(person_id=person_id, unit_id=unit_id, expires=expires)
        return f"{self.public_url}/dashboard/?{urlencode({'t': token})}", expires
