"""WeCom's side of the app callback: build the plaintext XML, encrypt and sign it exactly as
WeCom does, POST it to the service, verify and decrypt the passive reply.

The sandbox's chat page and the tests both send through this class, so every message they send
crosses the real door.
"""
from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

import aiohttp

from bot.app_xml import cdata
from bot.crypto import CallbackCrypto

_CONTENT_RE = re.compile(r"<Content><!\[CDATA\[(.*?)\]\]></Content>", re.S)


@dataclass(frozen=True)
class Delivery:
    status: int
    reply_xml: str | None  # decrypted passive reply, if any

    @property
    def reply_text(self) -> str | None:
        if not self.reply_xml:
            return None
        parts = _CONTENT_RE.findall(self.reply_xml)
        # a "]]>" in the text was split as "]]]]><![CDATA[>" (see app_xml.cdata)
        return "".join(parts).replace("]]]]><![CDATA[>", "]]>") if parts else None


class AppCallbackSender:
    def __init__(self, *, http: aiohttp.ClientSession, url: str, crypto: CallbackCrypto,
                 agent_id: int) -> None:
        self.http, self.url, self.crypto, self.agent_id = http, url, crypto, agent_id
        self._ids = itertools.count(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))

    def new_msg_id(self) -> str:
        return str(next(self._ids))

    def message_xml(self, user: str, msg_type: str, fields: str, *,
                    create_time: int | None = None, msg_id: str | None = None) -> str:
        ts = create_time or int(time.time())
        msg_id_xml = "" if msg_type == "event" else f"<MsgId>{msg_id or self.new_msg_id()}</MsgId>"
        return (f"<xml><ToUserName>{cdata(self.crypto.receive_id)}</ToUserName>"
                f"<FromUserName>{cdata(user)}</FromUserName><CreateTime>{ts}</CreateTime>"
                f"<MsgType>{cdata(msg_type)}</MsgType>{fields}{msg_id_xml}"
                f"<AgentID>{self.agent_id}</AgentID></xml>")

    async def post_plaintext(self, plaintext: str, *, timestamp: str | None = None) -> Delivery:
        query, body = self.crypto.sign_callback(plaintext, timestamp=timestamp,
                                                agent_id=self.agent_id)
        async with self.http.post(self.url, params=query, data=body.encode(),
                                  headers={"Content-Type": "text/xml"}) as resp:
            raw = await resp.text()
        if resp.status != 200 or not raw:
            return Delivery(resp.status, None)
        return Delivery(resp.status, self.crypto.open_reply(raw))

    async def text(self, user: str, text: str, *, msg_id: str | None = None) -> Delivery:
        return await self.post_plaintext(
            self.message_xml(user, "text", f"<Content>{cdata(text)}</Content>", msg_id=msg_id))

    async def image(self, user: str, media_id: str) -> Delivery:
        fields = (f"<PicUrl>{cdata('http://127.0.0.1/pic/' + escape(media_id))}</PicUrl>"
                  f"<MediaId>{cdata(media_id)}</MediaId>")
        return await self.post_plaintext(self.message_xml(user, "image", fields))

    async def event(self, user: str, event: str, event_key: str = "", *,
                    extra: str = "", create_time: int | None = None) -> Delivery:
        fields = f"<Event>{cdata(event)}</Event><EventKey>{cdata(event_key)}</EventKey>{extra}"
        return await self.post_plaintext(self.message_xml(user, "event", fields,
                                                          create_time=create_time))

    async def card_click(self, user: str, event_key: str, task_id: str,
                         response_code: str = "") -> Delivery:
        extra = (f"<TaskId>{cdata(task_id)}</TaskId><CardType>{cdata('button_interaction')}"
                 f"</CardType><ResponseCode>{cdata(response_code)}</ResponseCode>")
        return await self.event(user, "template_card_event", event_key, extra=extra)
