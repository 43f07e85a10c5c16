"""Rendering the words users read: jinja2 templates under ``templates/`` (StrictUndefined)."""
from __future__ import annotations

from importlib.resources import files
from typing import Any

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
    boundaries, never inside a multi-byte character.
    """
    budget = limit - reserve
    if len(text.encode()) <= limit:
        return [text]
    pages: list[str] = []
    current = ""
    for line in _cut_long_lines(text.split("\n"), budget):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) > budget:
            pages.append(current)
            current = line
        else:
            current = candidate
    if current:
        pages.append(current)
    return pages


def _cut_long_lines(lines: list[str], budget: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        while len(line.encode()) > budget:
            cut, size = 0, 0
            for i, ch in enumerate(line):
                size += len(ch.encode())
                if size > budget:
                    break
                cut = i + 1
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out
