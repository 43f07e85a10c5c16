"""A card click's answer for the AI bot: the whole card again, its buttons greyed out.

The app can grey one button out (``update_button``); the AI bot can only replace the whole card
(``update_template_card``, same task_id). So the card the outbox pushed to that chat is found
again and sent back with ``replace_text``, which shows the buttons greyed out with that text;
a card not found (pushed long ago) is answered with a small card saying the same.
"""
from __future__ import annotations

import copy
from typing import Any

from sqlmodel import Session, select

from models.outbox import OutboxMessage

LOOK_BACK = 200  # the chat's newest card pushes searched for the clicked one


def original_card(*, session: Session, recipient: str, task_id: str) -> dict[str, Any] | None:
    rows = session.exec(select(OutboxMessage.payload).where(
        OutboxMessage.channel == "aibot", OutboxMessage.recipient == recipient,
        OutboxMessage.msgtype == "template_card")
        .order_by(OutboxMessage.id.desc()).limit(LOOK_BACK)).all()
    for payload in rows:
        if isinstance(payload, dict) and payload.get("task_id") == task_id:
            return payload
    return None


def replaced(card: dict[str, Any] | None, *, task_id: str, replace_text: str) -> dict[str, Any]:
    if card is None:
        card = {"card_type": "button_interaction", "main_title": {"title": replace_text},
                "button_list": [{"text": replace_text, "style": 2, "key": "done"}]}
    card = copy.deepcopy(card)
    card["task_id"] = task_id
    card["replace_text"] = replace_text
    return card
