"""What a handler gets besides the message: the sender, the conversation, the clock, services."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from models.conversation import Snapshot
from models.org import Identity

if TYPE_CHECKING:
    from bot.db import Database
    from bot.render import Renderer
    from bot.router import Routes, State


class ConversationHandle:
    """The sender's conversation state for this turn; written back once, after the handler."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.changed = False

    @property
    def state(self) -> str | None:
        return self._snapshot.state

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._snapshot.data)

    def set(self, state: "State", **data: Any) -> dict[str, Any]:
        """Move to ``state``, adding ``data`` to what the conversation holds."""
        self._snapshot.state = state.name
        self._snapshot.data = {**self._snapshot.data, **data}
        self.changed = True
        return self.data

    def update(self, **data: Any) -> dict[str, Any]:
        self._snapshot.data = {**self._snapshot.data, **data}
        self.changed = True
        return self.data

    def clear(self) -> None:
        self._snapshot.state, self._snapshot.data = None, {}
        self.changed = True

    @property
    def pages(self) -> list[str]:
        return list(self._snapshot.pages)

    def set_pages(self, pages: list[str]) -> None:
        if pages != self._snapshot.pages:
            self._snapshot.pages = list(pages)
            self.changed = True

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot


@dataclass
class Ctx:
    db: "Database"
    renderer: "Renderer"
    routes: "Routes"
    now: datetime            # aware UTC; injected so tests can move time
    tz: ZoneInfo
    identity: Identity | None
    conversation: ConversationHandle
    args: str = ""           # the text after the command word
    photo_ids: tuple[int, ...] = ()  # photos that came with this message (models.photo)
    services: dict[str, Any] = field(default_factory=dict)
    chat_unit_id: int | None = None  # the unit a bound group chat belongs to (models.group)

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.tz)

    @property
    def unit_id(self) -> int | None:
        """The unit this turn acts for: a bound group's, else the sender's own."""
        if self.chat_unit_id is not None:
            return self.chat_unit_id
        return self.identity.unit_id if self.identity else None
