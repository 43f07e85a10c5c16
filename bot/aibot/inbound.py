"""The AI bot's JSON (doc 100719 / 101027, the same in both modes) to one ``Incoming``.

In a group the text starts with the "@bot" mention, which is cut off; ``mixed`` text + images
becomes a text (or, with no words, an image) message whose images are fetched by ``media``;
``voice`` arrives as recognised text; ``enter_chat`` is the app's ``enter_agent`` so the same
welcome handler answers; a card click's fields sit under ``event.template_card_event``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bot.messages import CardAction, Incoming

_MENTION = re.compile(r"^\s*@\S+\s*")
EVENT_NAMES = {"enter_chat": "enter_agent"}  # the app's name for "opened the chat"


class BadBody(ValueError):
    """The callback body lacks what every message has (a sender)."""


@dataclass(frozen=True)
class ImageRef:
    url: str
    aeskey: str = ""  # long connection: this image's own key (base64); callback: the door's


@dataclass(frozen=True)
class Inbound:
    msg: Incoming                   # photo_ids are added once the images are stored
    msgid: str
    images: tuple[ImageRef, ...] = ()
    response_url: str = ""
    stream_id: str = ""             # a stream-refresh poll (callback mode)


def strip_mention(text: str) -> str:
    """``@隐患排查助手 上报 …`` → ``上报 …`` (only a leading mention: the one WeCom adds)."""
    return _MENTION.sub("", text, count=1)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def parse_body(body: dict[str, Any], *, now: datetime) -> Inbound:
    user = _s(_d(body.get("from")).get("userid"))
    if not user:
        raise BadBody("no from.userid")
    msgtype, msgid = _s(body.get("msgtype")), _s(body.get("msgid"))
    chat_type = "group" if body.get("chattype") == "group" else "single"
    created = body.get("create_time")
    created_at = (datetime.fromtimestamp(created, timezone.utc)
                  if isinstance(created, int) and 0 < created < 10**11 else now)
    common = dict(channel="aibot", user_id=user, created_at=created_at, raw_type=msgtype,
                  chat_id=_s(body.get("chatid")) if chat_type == "group" else "",
                  chat_type=chat_type, quote_text=_quote(_d(body.get("quote"))))
    extra = {"response_url": _s(body.get("response_url"))}
    if msgtype == "event":
        return _event(body, user, common, extra)
    dedupe = f"msg:{msgid}" if msgid else "msg:" + _digest(user, repr(sorted(body.items())))
    if msgtype == "stream":
        return Inbound(Incoming(kind="stream", dedupe_key=dedupe, **common), msgid,
                       stream_id=_s(_d(body.get("stream")).get("id")), **extra)
    text, images = _content(msgtype, body)
    if chat_type == "group":
        text = strip_mention(text)
    if msgtype in ("text", "voice", "mixed"):
        kind = "image" if images and not text.strip() else "text"
    else:
        kind = msgtype if msgtype in ("image", "file", "video") else "unknown"
    return Inbound(Incoming(kind=kind, dedupe_key=dedupe, text=text, **common), msgid,
                   images=images, **extra)


def _content(msgtype: str, body: dict[str, Any]) -> tuple[str, tuple[ImageRef, ...]]:
    if msgtype in ("text", "voice"):
        return _s(_d(body.get(msgtype)).get("content")), ()
    if msgtype == "image":
        return "", tuple(i for i in (_image(_d(body.get("image"))),) if i)
    if msgtype != "mixed":
        return "", ()
    texts: list[str] = []
    images: list[ImageRef] = []
    items = _d(body.get("mixed")).get("msg_item")
    for item in items if isinstance(items, list) else []:
        item = _d(item)
        if item.get("msgtype") == "text":
            texts.append(_s(_d(item.get("text")).get("content")))
        elif item.get("msgtype") == "image" and (image := _image(_d(item.get("image")))):
            images.append(image)
    return "\n".join(t for t in texts if t), tuple(images)


def _image(image: dict[str, Any]) -> ImageRef | None:
    url = _s(image.get("url"))
    return ImageRef(url, _s(image.get("aeskey"))) if url.startswith(("http://", "https://")) \
        else None


def _quote(quote: dict[str, Any]) -> str:
    kind = _s(quote.get("msgtype"))
    if kind in ("text", "voice"):
        return _s(_d(quote.get(kind)).get("content"))
    if kind == "mixed":
        return _content("mixed", quote)[0]
    return ""


def _event(body: dict[str, Any], user: str, common: dict[str, Any],
           extra: dict[str, str]) -> Inbound:
    event = _d(body.get("event"))
    name = _s(event.get("eventtype"))
    card = {**event, **_d(event.get(name))}  # the nested form wins over a flat one
    key, task_id = _s(card.get("event_key")), _s(card.get("task_id"))
    # WeCom's rule for events is sender + create_time + event type; the card's task and key
    # keep two clicks of the same second apart (no create_time: the msgid stands in).
    when = str(body.get("create_time") or _s(body.get("msgid")))
    dedupe = "ev:" + _digest(user, when, name, task_id, key)
    msgid = _s(body.get("msgid"))
    if name == "template_card_event":
        action = CardAction(event_key=key, task_id=task_id, selected=_selected(card))
        return Inbound(Incoming(kind="card", dedupe_key=dedupe, event=name, event_key=key,
                                card=action, **common), msgid, **extra)
    return Inbound(Incoming(kind="event", dedupe_key=dedupe, event=EVENT_NAMES.get(name, name),
                            **common), msgid, **extra)


def _selected(card: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    items = _d(card.get("selected_items")).get("selected_item")
    chosen: dict[str, tuple[str, ...]] = {}
    for item in items if isinstance(items, list) else [items] if isinstance(items, dict) else []:
        item = _d(item)
        ids = _d(item.get("option_ids")).get("option_id")
        ids = ids if isinstance(ids, list) else [ids] if ids else []
        chosen[_s(item.get("question_key"))] = tuple(_s(i) for i in ids if _s(i))
    return chosen
