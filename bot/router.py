"""Routers: one per feature module, listing its commands, conversation states, events and cards.

Commands match as a prefix of the NFKC-normalised text, longest word first, so ``清单消防``,
``清单 消防`` and ``清单　消防`` (full-width space) all reach ``清单`` with the argument ``消防``.
A handler's docstring first line is its help text.
"""
from __future__ import annotations

import inspect
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable

if TYPE_CHECKING:
    from bot.context import Ctx
    from bot.messages import Incoming, Reply

Handler = Callable[["Incoming", "Ctx"], Awaitable["Reply"]]


def normalise(text: str) -> str:
    """NFKC (full-width letters, digits and U+3000 become ASCII) and collapse whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


class State:
    """One step of a conversation; its name is set by the ``StatesGroup`` that owns it."""

    name: str = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.name = f"{owner.__name__}:{attr}"

    def __repr__(self) -> str:
        return f"State({self.name})"


class StatesGroup:
    """A named set of ``State``s: subclass it and list the steps as class attributes."""


@dataclass(frozen=True)
class Command:
    word: str
    handler: Handler
    roles: frozenset[str] | None  # None: anyone bound to a unit
    help: str
    public: bool = False          # usable by a sender not bound yet (绑定, 帮助)
    over_state: bool = False      # beats an ongoing conversation (取消, 下一页)

    def allowed(self, roles: frozenset[str]) -> bool:
        return self.roles is None or bool(self.roles & roles)


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []
        self.states: dict[str, Handler] = {}
        self.events: dict[str, Handler] = {}
        self.cards: dict[str, Handler] = {}  # event-key prefix -> handler
        self.cancels: dict[str, Handler] = {}  # StatesGroup name -> what 取消 does there

    def command(self, *words: str, roles: Iterable[str] | None = None, hidden: bool = False,
                public: bool = False, over_state: bool = False) -> Callable[[Handler], Handler]:
        """Register a command; the first word is the one shown by 帮助 (unless ``hidden``)."""
        def register(handler: Handler) -> Handler:
            doc = inspect.getdoc(handler) or ""
            help_line = "" if hidden else doc.splitlines()[0] if doc else words[0]
            frozen = frozenset(roles) if roles is not None else None
            for i, word in enumerate(words):
                self.commands.append(Command(normalise(word), handler, frozen,
                                             help_line if i == 0 else "", public, over_state))
            return handler
        return register

    def state(self, state: State) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.states[state.name] = handler
            return handler
        return register

    def event(self, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.events[name] = handler
            return handler
        return register

    def on_cancel(self, group: type[StatesGroup]) -> Callable[[Handler], Handler]:
        """What 取消 does inside this conversation (e.g. keep the answers so far); the
        handler replies, and the conversation is cleared afterwards."""
        def register(handler: Handler) -> Handler:
            self.cancels[group.__name__] = handler
            return handler
        return register

    def card(self, key_prefix: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.cards[key_prefix] = handler
            return handler
        return register


class Routes:
    """All routers merged, in priority order (the order of ``handlers.ROUTERS``)."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = tuple(routers)
        self.commands = [c for r in self.routers for c in r.commands]
        # by first character, longest word first; among equals, the earlier router wins
        self._by_first: dict[str, list[Command]] = {}
        for command in sorted(self.commands, key=lambda c: -len(c.word)):
            self._by_first.setdefault(command.word[:1], []).append(command)
        self.states = {k: v for r in reversed(self.routers) for k, v in r.states.items()}
        self.events = {k: v for r in reversed(self.routers) for k, v in r.events.items()}
        self.cards = [(k, v) for r in self.routers for k, v in r.cards.items()]
        self.cancels = {k: v for r in reversed(self.routers) for k, v in r.cancels.items()}
        self._help: dict[frozenset[str], list[Command]] = {}  # per role set: 帮助 on every turn

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command ``text`` starts with and the argument after it."""
        text = normalise(text)
        for command in self._by_first.get(text[:1], ()):
            if text.startswith(command.word):
                return command, text[len(command.word):].strip()
        return None

    def cancel_handler(self, state: str | None) -> Handler | None:
        return self.cancels.get(state.split(":", 1)[0]) if state else None

    def card_handler(self, event_key: str) -> Handler | None:
        for prefix, handler in sorted(self.cards, key=lambda kv: -len(kv[0])):
            if event_key.startswith(prefix):
                return handler
        return None

    def help_for(self, roles: frozenset[str]) -> list[Command]:
        found = self._help.get(roles)
        if found is None:
            found = self._help[roles] = [c for c in self.commands if c.help and c.allowed(roles)]
        return list(found)
