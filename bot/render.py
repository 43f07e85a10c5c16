"""Rendering the words users read: jinja2 templates under ``templates/`` (StrictUndefined)."""
from __future__ import annotations

from importlib.resources import files
from typing import Any

from zoneinfo import ZoneInfo

import jinja2

TEXT_LIMIT_BYTES = 2048  # WeCom truncates a text message beyond this


WEEKDAYS = "一二三四五六日"


class _Environment(jinja2.Environment):
    def make_globals(self, d: Any) -> dict[str, Any]:
        """Each template's globals as a plain dict, not jinja's ChainMap: every render copies
        them, and copying a ChainMap cost ~5 µs a render, a tenth of a 帮助's rendering
        (bench/profile_callback.py). Globals are set before any template loads."""
        return {**self.globals, **(d or {})}


def make_env(tz: ZoneInfo) -> jinja2.Environment:
    root = str(files("templates"))
    env = _Environment(loader=jinja2.FileSystemLoader(root),
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
        self._templates: dict[str, jinja2.Template] = {}  # templates never change at run time

    def render(self, name: str, /, **data: Any) -> str:
        template = self._templates.get(name)
        if template is None:
            template = self._templates[name] = self.env.get_template(name)
        return template.render(**data).strip()


def split_pages(text: str, limit: int = TEXT_LIMIT_BYTES, reserve: int = 120) -> list[str]:
    """Split ``text`` into pages of at most ``limit - reserve`` UTF-8 bytes, at line ends.

    ``reserve`` leaves room for the page footer. No page starts with an empty line. A single
    overlong line is cut at a character boundary, never inside a multi-byte character. Works on
    the encoded text, so a page costs a search rather than a pass over its lines.
    """
    data = text.encode()
    if len(data) <= limit:
        return [text]
    budget, size = limit - reserve, len(data)
    pages: list[str] = []
    start = 0
    while True:
        while start < size and data[start] == NEWLINE:
            start += 1
        if size - start <= budget:
            if start < size:
                pages.append(data[start:].decode())
            return pages
        cut = data.rfind(b"\n", start, start + budget + 1)
        if cut > start:  # whole lines
            pages.append(data[start:cut].decode())
            start = cut + 1
            continue
        cut = start + budget  # one line longer than a page: back to a character's first byte
        while data[cut] & 0xC0 == 0x80:
            cut -= 1
        pages.append(data[start:cut].decode())
        start = cut


NEWLINE = ord("\n")
