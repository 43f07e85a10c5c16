"""Rendering the words users read: jinja2 templates under ``templates/`` (StrictUndefined)."""
from __future__ import annotations

from importlib.resources import files
from typing import Any, Iterator

from zoneinfo import ZoneInfo

import jinja2

TEXT_LIMIT_BYTES = 2048  # WeCom truncates a text message beyond this


WEEKDAYS = "一二三四五六日"


def make_env(tz: ZoneInfo) -> jinja2.Environment:
    root = str(files("templates"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
                             auto_reload=False)  # no stat() of the file on every render
    env.filters["local"] = lambda dt: dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else ""
    env.filters["day"] = lambda d: (f"{d.isoformat()}（周{WEEKDAYS[d.weekday()]}）"
                                    if d else "")
    return env


class Renderer:
    """Renders a template name + data to text; one per application.

    Filters: ``local`` shows an aware datetime in the service's time zone, ``day`` a date with
    its weekday.
    """

    def __init__(self, tz: ZoneInfo | None = None) -> None:
        self.env = make_env(tz or ZoneInfo("Asia/Shanghai"))

    def render(self, name: str, /, **data: Any) -> str:
        return self.env.get_template(name).render(**data).strip()


def split_pages(text: str, limit: int = TEXT_LIMIT_BYTES, reserve: int = 120) -> list[str]:
    """Split ``text`` into pages of at most ``limit - reserve`` UTF-8 bytes, at line ends.

    ``reserve`` leaves room for the page footer. A single overlong line is cut at character
    boundaries, never inside a multi-byte character. Each line is encoded once.
    """
    if len(text.encode()) <= limit:
        return [text]
    budget = limit - reserve
    pages: list[str] = []
    current: list[str] = []
    size = 0  # bytes of "\n".join(current)
    for line, length in _cut_long_lines(text.split("\n"), budget):
        if not current and not line:
            continue  # no page starts with an empty line
        if current and size + 1 + length > budget:
            pages.append("\n".join(current))
            current, size = [], 0
        size += length + (1 if current else 0)
        current.append(line)
    if current:
        pages.append("\n".join(current))
    return pages


def _cut_long_lines(lines: list[str], budget: int) -> Iterator[tuple[str, int]]:
    """Each line with its UTF-8 length; a line over ``budget`` bytes in pieces that fit."""
    for line in lines:
        length = len(line.encode())
        while length > budget:
            cut, size = 0, 0
            for i, ch in enumerate(line):
                size += len(ch.encode())
                if size > budget:
                    break
                cut = i + 1
            yield line[:cut], len(line[:cut].encode())
            line = line[cut:]
            length = len(line.encode())
        yield line, length
