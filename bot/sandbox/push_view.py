"""What the chat page needs to draw a push: WeCom's message bodies flattened into plain fields.

The bodies come from the service through the local WeCom, which takes any JSON, so every field
is read defensively: a missing or odd field becomes an empty string or list, never an error.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from bot.sandbox.fake_api import Push

Json = dict[str, Any]


def push_json(push: Push) -> Json:
    return {"id": push.id, "to": push.to, "msgtype": push.msgtype, "view": view(push),
            "dropped": push.dropped, "duplicate": push.duplicate, "at": push.at,
            "time": datetime.fromtimestamp(push.at, timezone.utc).isoformat()}


def view(push: Push) -> Json:
    body = push.body if isinstance(push.body, dict) else {}
    if push.msgtype in ("text", "markdown"):
        return {"kind": push.msgtype, "content": _s(body.get("content"))}
    if push.msgtype == "textcard":
        return {"kind": "textcard", **{f: _s(body.get(f))
                                        for f in ("title", "description", "url", "btntxt")}}
    if push.msgtype == "template_card":
        clickable = bool(clickable_keys(push)) and not (push.dropped or push.duplicate)
        return {**card_view(body, push.updated), "clickable": clickable}
    if push.msgtype == "news":
        return {"kind": "news", "articles": [
            {f: _s(a.get(f)) for f in ("title", "description", "url")}
            for a in _dicts(body.get("articles"))]}
    if push.msgtype in ("image", "voice", "video", "file"):
        return {"kind": "media", "media_id": _s(body.get("media_id"))}
    return {"kind": "other", "json": json.dumps(body, ensure_ascii=False, sort_keys=True)}


def card_view(card: Json, updated: Json | None = None) -> Json:
    """A template card; ``updated`` is what ``update_template_card`` did to it, if anything:
    ``{"button": {"replace_name": ...}}`` greys the buttons out with that text, a whole card
    replaces this one (its ``replace_text``, if any, greys its buttons out)."""
    shown = card
    replace_name = ""
    if updated is not None and not isinstance(updated, dict):
        updated = {"button": {}}  # an odd update still greys the buttons out
    if updated is not None:
        if _is_button_update(updated):
            replace_name = _s(_dict(updated.get("button")).get("replace_name"))
        else:
            shown = updated
            replace_name = _s(updated.get("replace_text"))
    main, emphasis = _dict(shown.get("main_title")), _dict(shown.get("emphasis_content"))
    return {
        "kind": "template_card",
        "card_type": _s(shown.get("card_type")),
        "source": _s(_dict(shown.get("source")).get("desc")),
        "main_title": _s(main.get("title")),
        "desc": _s(main.get("desc")),
        "emphasis": {"title": _s(emphasis.get("title")), "desc": _s(emphasis.get("desc"))},
        "quote": _s(_dict(shown.get("quote_area")).get("quote_text")),
        "sub_title": _s(shown.get("sub_title_text")),
        "horizontal_content_list": [{"keyname": _s(h.get("keyname")), "value": _s(h.get("value"))}
                                    for h in _dicts(shown.get("horizontal_content_list"))],
        "jump_list": [{"title": _s(j.get("title")), "url": _s(j.get("url"))}
                      for j in _dicts(shown.get("jump_list"))],
        "button_list": buttons(shown),
        "task_id": _s(card.get("task_id")),
        "updated": updated is not None,
        "replace_name": replace_name,
    }


def buttons(card: Json) -> list[Json]:
    return [{"text": _s(b.get("text")), "key": _s(b.get("key")), "style": b.get("style", 1)}
            for b in _dicts(card.get("button_list"))]


def clickable_keys(push: Push) -> set[str]:
    """The button keys a person can still click on this card: none once the buttons are greyed
    out, the new card's once a whole card replaced it."""
    if push.msgtype != "template_card" or not push.task_id or not isinstance(push.body, dict):
        return set()  # no task id: WeCom has no callback to send
    updated = push.updated
    if updated is None:
        return {b["key"] for b in buttons(push.body) if b["key"]}
    if not isinstance(updated, dict) or _is_button_update(updated) or updated.get("replace_text"):
        return set()
    return {b["key"] for b in buttons(updated) if b["key"]}


def _is_button_update(updated: Json) -> bool:
    return "button" in updated and "card_type" not in updated


def _s(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
