"""Long-connection frames (doc 101463; names from the official SDKs).

A frame is ``{"cmd", "headers": {"req_id"}, "body"}``; an ack has no ``cmd`` and carries
``errcode``/``errmsg`` for the request with the same ``req_id``. Replies to a callback reuse the
callback's ``req_id``; requests of our own get a fresh one.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

SUBSCRIBE = "aibot_subscribe"
PING = "ping"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
RESPOND_MSG = "aibot_respond_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
SEND_MSG = "aibot_send_msg"
DISCONNECTED = "disconnected_event"
MAX_FRAME_CHARS = 1024 * 1024


class BadFrame(ValueError):
    """Not a frame we can use: not JSON, not an object, or a field missing."""


@dataclass(frozen=True)
class Frame:
    cmd: str                       # "" for an ack
    req_id: str
    body: dict[str, Any] = field(default_factory=dict)
    errcode: int = 0
    errmsg: str = ""

    @property
    def is_ack(self) -> bool:
        return not self.cmd

    @property
    def event_type(self) -> str:
        event = self.body.get("event")
        return str(event.get("eventtype", "")) if isinstance(event, dict) else ""


def parse(text: str | bytes) -> Frame:
    if len(text) > MAX_FRAME_CHARS:
        raise BadFrame("frame too large")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[…
        raise BadFrame("not JSON") from None
    if not isinstance(data, dict):
        raise BadFrame("not an object")
    headers = data.get("headers")
    req_id = headers.get("req_id") if isinstance(headers, dict) else None
    if not isinstance(req_id, str) or not req_id:
        raise BadFrame("no headers.req_id")
    cmd = data.get("cmd") or ""
    body = data.get("body", {})
    if not isinstance(cmd, str) or not isinstance(body, (dict, type(None))):
        raise BadFrame("cmd or body of the wrong type")
    errcode = data.get("errcode", 0)
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        raise BadFrame("errcode not an integer")
    return Frame(cmd, req_id, body or {}, errcode, str(data.get("errmsg") or ""))


def encode(cmd: str, req_id: str, body: dict[str, Any]) -> str:
    return json.dumps({"cmd": cmd, "headers": {"req_id": req_id}, "body": body},
                      ensure_ascii=False)


def encode_ack(req_id: str, errcode: int = 0, errmsg: str = "ok") -> str:
    return json.dumps({"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg},
                      ensure_ascii=False)


def new_req_id(cmd: str) -> str:
    return f"{cmd}_{uuid.uuid4().hex}"


def new_stream_id() -> str:
    return uuid.uuid4().hex


def stream(stream_id: str, content: str, *, finish: bool) -> dict[str, Any]:
    """A stream reply (markdown content, at most 20480 bytes)."""
    return {"msgtype": "stream", "stream": {"id": stream_id, "finish": finish,
                                            "content": content}}


def text(content: str) -> dict[str, Any]:
    """A text reply (the welcome on enter_chat)."""
    return {"msgtype": "text", "text": {"content": content}}


def update_card(card: dict[str, Any], userids: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"response_type": "update_template_card", "template_card": card}
    if userids:
        body["userids"] = userids
    return body


def send_msg(chatid: str, msgtype: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A proactive push (``aibot_send_msg``) to a group chat id or a userid."""
    if msgtype == "text":  # only markdown and template_card can be pushed
        msgtype, payload = "markdown", {"content": payload.get("content", "")}
    return {"chatid": chatid, "msgtype": msgtype, msgtype: payload}
