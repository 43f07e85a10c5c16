"""The two types every door speaks: ``Incoming`` (what a person sent) and ``Reply`` (the answer).

Channel adapters turn their wire format into ``Incoming`` and render ``Reply`` back; handlers
see nothing else, so they cannot tell a 1:1 app chat from a group chat with the AI bot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


@dataclass(frozen=True)
class CardAction:
    """A click on a template card: which button (event key), on which card (task id)."""

    event_key: str
    task_id: str = ""
    response_code: str = ""
    # question key -> chosen option ids; always lists, even for a single choice
    selected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Incoming:
    channel: str                     # "app" (self-built app) or "aibot"
    user_id: str                     # WeCom userid of the sender
    kind: str                        # text, image, voice, video, location, link, event, card, unknown
    dedupe_key: str                  # MsgId, or sender + CreateTime (+ event) for events
    created_at: datetime
    text: str = ""
    media_ids: tuple[str, ...] = ()  # photos (image MediaIds) to fetch later
    event: str = ""                  # enter_agent, click, view, ... for kind == "event"
    event_key: str = ""
    card: CardAction | None = None
    location: tuple[float, float, str] | None = None  # latitude, longitude, label
    chat_id: str = ""                # group chats (AI bot) only
    chat_type: str = "single"
    raw_type: str = ""               # the wire's own message type, for logs
    photo_ids: tuple[int, ...] = ()  # photos already stored (AI bot images), models.photo ids
    quote_text: str = ""             # the quoted message's text (AI bot "quote"), if any

    @property
    def conversation_key(self) -> str:
        """The key of the sender's conversation row: per person, and per group chat."""
        return self.user_id if self.chat_type == "single" else f"{self.user_id}@{self.chat_id}"


@dataclass(frozen=True)
class Reply:
    """A handler's answer: a template name and its data, rendered by the door.

    ``Reply.none()`` means no passive answer (an empty 200).
    """

    template: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    keep_pages: bool = False  # a stored page being served: leave the unread pages alone
    button: str | None = None  # a card click's answer: grey the card's buttons out with this

    @classmethod
    def update_button(cls, replace_name: str) -> "Reply":
        return cls(button=replace_name)

    @classmethod
    def of(cls, template: str, **data: Any) -> "Reply":
        return cls(template=template, data=data)

    @classmethod
    def none(cls) -> "Reply":
        return cls()

    @property
    def is_empty(self) -> bool:
        return self.template is None and self.button is None
