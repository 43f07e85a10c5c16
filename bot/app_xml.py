"""The self-built app's plaintext XML: parse an authenticated callback, render a passive reply.

Parsing happens only after the signature and receive id are checked. DOCTYPE and entity
declarations are refused outright (WeCom never sends them), and xmltodict is told to return
``SelectedItem`` and ``OptionId`` as lists even when there is one (it would return a dict).
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from bot.messages import CardAction, Incoming

FORCE_LIST = ("SelectedItem", "OptionId")
KINDS = {"text", "image", "voice", "video", "location", "link", "file"}


class BadXml(ValueError):
    """The decrypted plaintext is not a message safebot can read."""


def parse_callback(plaintext: str) -> Incoming:
    if "<!DOCTYPE" in plaintext or "<!ENTITY" in plaintext:
        raise BadXml("DOCTYPE or entity declaration")
    try:
        doc = xmltodict.parse(plaintext, force_list=FORCE_LIST, disable_entities=True)
    except (ExpatError, ValueError) as exc:  # includes char refs to lone surrogates
        raise BadXml(str(exc)) from None
    xml = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(xml, dict):
        raise BadXml("no <xml> root")
    try:
        return _to_incoming({k: v for k, v in xml.items()})
    except RecursionError:  # repr() for the dedupe key of thousands of nested elements
        raise BadXml("nested too deeply") from None


def _text(xml: dict[str, Any], key: str) -> str:
    value = xml.get(key)
    return value if isinstance(value, str) else ""


def _created(xml: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(_text(xml, "CreateTime")), timezone.utc)
    except (ValueError, OverflowError, OSError):
        return datetime.now(timezone.utc)


def _to_incoming(xml: dict[str, Any]) -> Incoming:
    user = _text(xml, "FromUserName")
    if not user:
        raise BadXml("no FromUserName")
    msg_type = _text(xml, "MsgType")
    created = _created(xml)
    common = {"channel": "app", "user_id": user, "created_at": created, "raw_type": msg_type}
    if msg_type == "event":
        event = _text(xml, "Event")
        key = _text(xml, "EventKey")
        # Events have no MsgId: WeCom's rule is sender + CreateTime; the event name, key and
        # card task id keep two different events of the same second apart.
        dedupe = _digest("ev", user, _text(xml, "CreateTime"), event, key, _text(xml, "TaskId"))
        if event == "template_card_event":
            return Incoming(kind="card", dedupe_key=dedupe, event=event, event_key=key,
                            card=_card(xml), **common)
        return Incoming(kind="event", dedupe_key=dedupe, event=event, event_key=key, **common)
    msg_id = _text(xml, "MsgId")
    dedupe = f"msg:{msg_id}" if msg_id else _digest("msg", user, _text(xml, "CreateTime"),
                                                    msg_type, repr(sorted(xml.items())))
    kind = msg_type if msg_type in KINDS else "unknown"
    if kind == "text":
        return Incoming(kind=kind, dedupe_key=dedupe, text=_text(xml, "Content"), **common)
    if kind == "image":
        media = _text(xml, "MediaId")
        return Incoming(kind=kind, dedupe_key=dedupe, media_ids=(media,) if media else (),
                        **common)
    if kind == "location":
        return Incoming(kind=kind, dedupe_key=dedupe, location=_location(xml), **common)
    if kind == "link":
        return Incoming(kind=kind, dedupe_key=dedupe, text=_text(xml, "Url"), **common)
    # voice, video, file and anything unknown: the kind is enough for a polite answer
    return Incoming(kind=kind, dedupe_key=dedupe, **common)


def _location(xml: dict[str, Any]) -> tuple[float, float, str] | None:
    try:
        return float(_text(xml, "Location_X")), float(_text(xml, "Location_Y")), _text(xml, "Label")
    except ValueError:
        return None


def _card(xml: dict[str, Any]) -> CardAction:
    selected: dict[str, tuple[str, ...]] = {}
    items = xml.get("SelectedItems")
    for item in (items.get("SelectedItem") or []) if isinstance(items, dict) else []:
        if not isinstance(item, dict):
            continue
        options = item.get("OptionIds")
        ids = options.get("OptionId") or [] if isinstance(options, dict) else []
        selected[_text(item, "QuestionKey")] = tuple(i for i in ids if isinstance(i, str))
    return CardAction(event_key=_text(xml, "EventKey"), task_id=_text(xml, "TaskId"),
                      response_code=_text(xml, "ResponseCode"), selected=selected)


def _digest(*parts: str) -> str:
    return parts[0] + ":" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def cdata(text: str) -> str:
    """A CDATA section that user text cannot close early: ``]]>`` is split across two."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(*, to_user: str, from_user: str, content: str) -> str:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
            f"<FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


def update_button_reply(*, to_user: str, from_user: str, replace_name: str) -> str:
    """The passive answer to a card click: grey its buttons out with ``replace_name``."""
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
            f"<FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[update_button]]></MsgType>"
            f"<Button><ReplaceName>{cdata(replace_name)}</ReplaceName></Button></xml>")
