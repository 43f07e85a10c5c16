"""An async WeCom API client on aiohttp (wechatpy's client is synchronous and would block).

One access token per app, shared by every caller: fetched by one caller at a time, refreshed
five minutes before it expires, and fetched again once when WeCom says it is invalid or expired
(40014/42001) even before then. -1 (busy) is retried with a short backoff; 45009 (rate limited)
is raised for the caller to back off. Every call has a timeout.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.clock import Clock

log = logging.getLogger(__name__)
TOKEN_ERRORS = {40014, 42001}
BUSY, RATE_LIMITED = -1, 45009
REFRESH_MARGIN_S = 300
MEDIA_CHUNK = 20 * 1024 * 1024  # media/get serves big files only in Range chunks of 20 MB


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str = "", path: str = "") -> None:
        super().__init__(f"{path}: {errcode} {errmsg}")
        self.errcode, self.errmsg, self.path = errcode, errmsg, path

    @property
    def transient(self) -> bool:
        return self.errcode in (BUSY, RATE_LIMITED) or self.errcode in TOKEN_ERRORS


class WeComUnavailable(Exception):
    """Network failure, timeout or an HTTP error status: worth retrying later."""


@dataclass(frozen=True)
class SendResult:
    msgid: str
    invalid_users: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()
    response_code: str = ""


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    filename: str


class WeComAPI:
    def __init__(self, *, http: aiohttp.ClientSession, base_url: str, corp_id: str, secret: str,
                 agent_id: int, clock: Clock, timeout_s: float = 10.0,
                 busy_retries: int = 3, busy_backoff_s: float = 0.5) -> None:
        self.http, self.base_url = http, base_url.rstrip("/")
        self.corp_id, self.secret, self.agent_id, self.clock = corp_id, secret, agent_id, clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.busy_retries, self.busy_backoff_s = busy_retries, busy_backoff_s
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.token_fetches = 0
        # When WeCom started failing every request (epoch seconds; None while it answers):
        # /healthz reports an outage the outbox's backoff would otherwise hide.
        self.failing_since: float | None = None

    # -- token -------------------------------------------------------------------------------
    @property
    def token_expires_at(self) -> float | None:
        """When the cached token expires by WeCom's count (epoch seconds; it is fetched again
        ``REFRESH_MARGIN_S`` before), or None before the first fetch (``/healthz``)."""
        return self._token_expires + REFRESH_MARGIN_S if self._token else None

    async def token(self, *, stale: str | None = None) -> str:
        """The cached token; ``stale`` names a token WeCom refused, forcing one refetch."""
        async with self._token_lock:
            now = self.clock.now().timestamp()
            if self._token and self._token != stale and now < self._token_expires:
                return self._token
            data = await self._request("/cgi-bin/gettoken",
                                       {"corpid": self.corp_id, "corpsecret": self.secret},
                                       None, None)
            if data.get("errcode", 0) != 0:
                raise WeComError(int(data["errcode"]), data.get("errmsg", ""), "gettoken")
            self.token_fetches += 1
            self._token = data["access_token"]
            self._token_expires = now + int(data.get("expires_in", 7200)) - REFRESH_MARGIN_S
            return self._token

    # -- plumbing ----------------------------------------------------------------------------
    async def call(self, path: str, *, body: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None,
                   form: aiohttp.FormData | None = None) -> dict[str, Any]:
        """POST (or GET when there is no body) with the token; token and busy retries."""
        token = await self.token()
        busy = 0
        refetched = False
        while True:
            query = {**(params or {}), "access_token": token}
            data = await self._request(path, query, body, form)
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in TOKEN_ERRORS and not refetched:
                refetched = True
                token = await self.token(stale=token)
                continue
            if code == BUSY and busy < self.busy_retries:
                busy += 1
                await asyncio.sleep(self.busy_backoff_s * 2 ** (busy - 1))
                continue
            raise WeComError(code, data.get("errmsg", ""), path)

    async def _request(self, path: str, query: dict[str, str], body: Any,
                       form: aiohttp.FormData | None) -> dict[str, Any]:
        """One HTTP round trip; any answer, even an error code, means WeCom is reachable."""
        try:
            data = await self._round_trip(path, query, body, form)
        except WeComUnavailable:
            if self.failing_since is None:
                self.failing_since = self.clock.now().timestamp()
            raise
        self.failing_since = None
        return data

    async def _round_trip(self, path: str, query: dict[str, str], body: Any,
                          form: aiohttp.FormData | None) -> dict[str, Any]:
        method = "POST" if body is not None or form is not None else "GET"
        try:
            async with self.http.request(method, self.base_url + path, params=query,
                                         json=body, data=form, timeout=self.timeout) as resp:
                if resp.status >= 400:
                    raise WeComUnavailable(f"{path}: HTTP {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise WeComUnavailable(f"{path}: {exc!r}") from None

    # -- calls -------------------------------------------------------------------------------
    async def send_message(self, message: dict[str, Any], *,
                           duplicate_check_s: int = 1800) -> SendResult:
        """``message/send``: ``message`` has touser and msgtype + its body; agentid is added.

        ``enable_duplicate_check`` makes WeCom drop the same content to the same person within
        ``duplicate_check_s``: a row sent and then re-sent after a crash reaches them once.
        """
        body = {**message, "agentid": self.agent_id, "enable_duplicate_check": 1,
                "duplicate_check_interval": duplicate_check_s}
        data = await self.call("/cgi-bin/message/send", body=body)
        return SendResult(msgid=str(data.get("msgid", "")),
                          invalid_users=_split(data.get("invaliduser")),
                          unlicensed_users=_split(data.get("unlicenseduser")),
                          response_code=str(data.get("response_code", "")))

    async def update_template_card(self, *, userids: list[str], response_code: str,
                                   replace_name: str | None = None,
                                   card: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"userids": userids, "agentid": self.agent_id,
                                "response_code": response_code}
        if card is not None:
            body["template_card"] = card
        else:
            body["button"] = {"replace_name": replace_name or ""}
        await self.call("/cgi-bin/message/update_template_card", body=body)

    async def upload_media(self, kind: str, filename: str, content: bytes,
                           content_type: str = "application/octet-stream") -> str:
        form = aiohttp.FormData(quote_fields=False)  # WeCom shows the name as sent: keep UTF-8
        form.add_field("media", content, filename=filename, content_type=content_type)
        data = await self.call("/cgi-bin/media/upload", params={"type": kind}, form=form)
        return str(data["media_id"])

    async def get_media(self, media_id: str) -> Media:
        """Download temporary media; big files come in 20 MB ``Range`` chunks."""
        chunks: list[bytes] = []
        start, total = 0, None
        content_type, filename = "application/octet-stream", media_id
        while total is None or start < total:
            headers = {"Range": f"bytes={start}-{start + MEDIA_CHUNK - 1}"}
            body, resp_headers, status = await self._media_request(media_id, headers)
            content_type = resp_headers.get("Content-Type", content_type).split(";")[0]
            filename = _filename(resp_headers.get("Content-Disposition", "")) or filename
            chunks.append(body)
            start += len(body)
            if status != 206:  # the whole file in one answer
                break
            total = _range_total(resp_headers.get("Content-Range", ""))
            if total is None or not body:
                break
        return Media(b"".join(chunks), content_type, filename)

    async def _media_request(self, media_id: str, headers: dict[str, str],
                             ) -> tuple[bytes, dict[str, str], int]:
        token, refetched = await self.token(), False
        while True:
            try:
                async with self.http.get(self.base_url + "/cgi-bin/media/get",
                                         params={"access_token": token, "media_id": media_id},
                                         headers=headers, timeout=self.timeout) as resp:
                    if resp.status >= 400 and resp.status != 416:
                        raise WeComUnavailable(f"media/get: HTTP {resp.status}")
                    body = await resp.read()
                    is_json = resp.headers.get("Content-Type", "").startswith(
                        ("application/json", "text/plain"))
                    info = dict(resp.headers), resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise WeComUnavailable(f"media/get: {exc!r}") from None
            if not is_json:
                return body, *info
            data = json.loads(body or b"{}")  # errors come back as JSON, files as bytes
            code = int(data.get("errcode", 0))
            if code in TOKEN_ERRORS and not refetched:
                refetched, token = True, await self.token(stale=token)
                continue
            raise WeComError(code, data.get("errmsg", ""), "media/get")

    async def webhook_send(self, key: str, message: dict[str, Any]) -> None:
        """A group webhook (消息推送): the key is its only credential; no token."""
        data = await self._request("/cgi-bin/webhook/send", {"key": key}, message, None)
        code = int(data.get("errcode", 0))
        if code != 0:
            raise WeComError(code, data.get("errmsg", ""), "webhook/send")


def _split(value: Any) -> tuple[str, ...]:
    return tuple(v for v in str(value or "").split("|") if v)


def _filename(disposition: str) -> str:
    for part in disposition.split(";"):
        part = part.strip()
        if part.startswith("filename="):
            return part[len("filename="):].strip('"')
    return ""


def _range_total(content_range: str) -> int | None:
    # "bytes 0-20971519/52428800"
    try:
        return int(content_range.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None
