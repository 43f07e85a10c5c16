"""The JSON bodies WeCom sends the AI bot (doc 100719 / 101027), as the sandbox builds them:
the same for the long connection (a frame's ``body``) and for callbacks (encrypted)."""
from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

BOT_NAME = "隐患排查助手"
AIBOT_ID = "aibotsandbox"
_ids = itertools.count(int(time.time() * 1000))


def new_msgid() -> str:
    return f"{next(_ids):x}{secrets.token_hex(4)}"


def _common(user: str, chat_id: str, msgtype: str, response_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {"msgid": new_msgid(), "aibotid": AIBOT_ID,
                            "chattype": "group" if chat_id else "single",
                            "from": {"userid": user}, "msgtype": msgtype}
    if chat_id:
        body["chatid"] = chat_id
    if response_url:
        body["response_url"] = response_url
    return body


def message(*, user: str, text: str, chat_id: str = "", images: list[dict[str, str]] = (),
            response_url: str = "") -> dict[str, Any]:
    """A text, or with images a ``mixed`` message; in a group it @-mentions the bot first, as
    WeCom delivers only messages that mention it. ``images``: ``{"url", ["aeskey"]}``."""
    content = f"@{BOT_NAME} {text}" if chat_id else text
    if not images:
        body = _common(user, chat_id, "text", response_url)
        body["text"] = {"content": content}
        return body
    body = _common(user, chat_id, "mixed", response_url)
    items = [{"msgtype": "text", "text": {"content": content}}] if content.strip() else []
    body["mixed"] = {"msg_item": items + [{"msgtype": "image", "image": dict(i)}
                                          for i in images]}
    return body


def card_event(*, user: str, chat_id: str, task_id: str, key: str,
               card_type: str = "button_interaction", response_url: str = "") -> dict[str, Any]:
    body = _common(user, chat_id, "event", response_url)
    body["create_time"] = int(time.time())
    body["event"] = {"eventtype": "template_card_event", "template_card_event": {
        "card_type": card_type, "event_key": key, "task_id": task_id}}
    return body


def enter_chat(*, user: str) -> dict[str, Any]:
    body = _common(user, "", "event", "")
    body["create_time"] = int(time.time())
    body["event"] = {"eventtype": "enter_chat"}
    return body


def stream_poll(*, user: str, chat_id: str, stream_id: str) -> dict[str, Any]:
    body = _common(user, chat_id, "stream", "")
    body["stream"] = {"id": stream_id}
    return body
