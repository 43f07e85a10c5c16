"""The hazard-investigation checklists (隐患排查清单): one TOML file per area in ``models/checklists``.

The files are data, editable without code: the five areas of seed 004 with its item texts
verbatim, then the seed 001 focus areas written in the same style. They are read once at
start-up (``load_checklists``) and every mistake stops the start with the file's name.
File-name order is display order. A ``major_signs`` entry may join words with ``+``: the sign
is present when every word is (``安全出口+锁`` matches 「三楼安全出口被锁闭」).
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Iterable

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ITEM_ID_RE = re.compile(r"^[a-z0-9_-]+$")
_CLAUSE_RE = re.compile(r"[,.;!?。\n]")  # after NFKC: ，；！？ are ASCII, 。 is not
_LISTS = ("aliases", "keywords", "major_signs")
_FIELDS = {"key", "name", "source", "items", *_LISTS}


class ChecklistError(ValueError):
    """A checklist file is broken; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str


@dataclass(frozen=True)
class Checklist:
    key: str
    name: str
    aliases: tuple[str, ...]
    keywords: tuple[str, ...]
    major_signs: tuple[str, ...]
    source: str
    items: tuple[ChecklistItem, ...]

    @property
    def words(self) -> tuple[str, ...]:
        """The name and the aliases: what a person may type to pick this area."""
        return (self.name, *self.aliases)

    @property
    def shortcut(self) -> str:
        """What the area list tells people to type: the name or the first alias, if shorter."""
        return min(self.aliases[0], self.name, key=len)


def _norm(text: str) -> str:
    """NFKC, lower case, no whitespace: 「清单　消防」 and 「消防 」 compare equal."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


class Checklists:
    """All areas in display order, and the look-ups the bot needs."""

    def __init__(self, areas: tuple[Checklist, ...]) -> None:
        self._areas = areas

    def all(self) -> tuple[Checklist, ...]:
        return self._areas

    def __len__(self) -> int:
        return len(self._areas)

    def find(self, text: str) -> list[Checklist]:
        """Areas ``text`` names: exact key/name/alias first, else part of a name or alias,
        else areas whose name or alias appears inside ``text``. Several means ambiguous."""
        word = _norm(text)
        if not word:
            return []
        exact = [a for a in self._areas if word in {a.key, *map(_norm, a.words)}]
        if exact:
            return exact
        partial = [a for a in self._areas if any(word in _norm(w) for w in a.words)]
        return partial or [a for a in self._areas if any(_norm(w) in word for w in a.words)]

    def suggest_area(self, description: str) -> Checklist | None:
        """The area whose keywords the description hits most (then longest hits, then order)."""
        text = _norm(description)
        best, best_score = None, (0, 0)
        for area in self._areas:
            hits = [k for k in area.keywords if _norm(k) in text]
            score = (len(hits), sum(len(k) for k in hits))
            if score > best_score:
                best, best_score = area, score
        return best

    def major_signs_in(self, description: str) -> list[str]:
        """The ``major_signs`` entries (as written in the files) present in the description;
        the words of a ``+`` sign must share a clause, so 「出口锁闭，通道堵塞」 is no 出口+堵."""
        text = unicodedata.normalize("NFKC", description)
        clauses = [_norm(c) for c in _CLAUSE_RE.split(text)]
        found: list[str] = []
        for area in self._areas:
            for sign in area.major_signs:
                parts = [_norm(p) for p in sign.split("+")]
                if sign not in found and any(all(p in c for p in parts) for c in clauses):
                    found.append(sign)
        return found


def load_checklists(directory: Path | Traversable | None = None) -> Checklists:
    """Read and check every ``*.toml`` in ``directory`` (default: the packaged checklists)."""
    root = directory if directory is not None else files("models") / "checklists"
    paths = sorted((p for p in root.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    if not paths:
        raise ChecklistError(f"{root}: no checklist files (*.toml)")
    areas = tuple(_parse(p.name, p.read_text(encoding="utf-8")) for p in paths)
    _check_unique(zip((p.name for p in paths), areas))
    return Checklists(areas)


def _parse(file: str, source: str) -> Checklist:
    def fail(problem: str) -> ChecklistError:
        return ChecklistError(f"{file}: {problem}")

    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML ({exc})") from None
    if unknown := sorted(set(data) - _FIELDS):
        raise fail(f"unknown field(s) {', '.join(unknown)}")
    for name in ("key", "name", "source"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise fail(f"'{name}' is missing or empty")
    if not _KEY_RE.match(data["key"]):
        raise fail(f"key {data['key']!r} must be lower-case ASCII letters, digits or _")
    lists = {}
    for name in _LISTS:
        value = data.get(name)
        if not isinstance(value, list) or not value:
            raise fail(f"'{name}' is missing or empty")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"'{name}' must hold only non-empty strings")
        lists[name] = tuple(v.strip() for v in value)
    if bad := [s for s in lists["major_signs"] if not all(p.strip() for p in s.split("+"))]:
        raise fail(f"major sign {bad[0]!r} has an empty part around '+'")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise fail("no items ([[items]] with id and text)")
    items = []
    for n, item in enumerate(raw_items, 1):
        if not isinstance(item, dict) or set(item) != {"id", "text"}:
            raise fail(f"item {n} must have exactly 'id' and 'text'")
        if not isinstance(item["id"], str) or not _ITEM_ID_RE.match(item["id"]):
            raise fail(f"item {n}: id {item['id']!r} must be lower-case ASCII (a-z 0-9 _ -)")
        if not isinstance(item["text"], str) or not item["text"].strip():
            raise fail(f"item {item['id']}: text is empty")
        items.append(ChecklistItem(id=item["id"], text=item["text"].strip()))
    return Checklist(key=data["key"], name=data["name"].strip(), source=data["source"].strip(),
                     items=tuple(items), **lists)


def _check_unique(named: Iterable[tuple[str, Checklist]]) -> None:
    """Keys, item ids and the words people type (names, aliases) belong to one area each."""
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    words: dict[str, tuple[str, str]] = {}
    for file, area in named:
        if area.key in keys:
            raise ChecklistError(f"{file}: key {area.key!r} already used in {keys[area.key]}")
        keys[area.key] = file
        for item in area.items:
            if item.id in ids:
                raise ChecklistError(f"{file}: item id {item.id!r} already used in {ids[item.id]}")
            ids[item.id] = file
        for word in dict.fromkeys(map(_norm, area.words)):
            if word in words:
                other_file, other_name = words[word]
                raise ChecklistError(f"{file}: name or alias {word!r} already used by "
                                     f"{other_name} in {other_file}")
            words[word] = (file, area.name)
