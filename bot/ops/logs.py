"""Logging, set up in one place (``safebot``'s ``main``): ``[logging] format = "text"`` or
``"json"`` (one object a line: ts, level, logger, message, and any ``extra=`` fields), and a
filter on the handler that takes every secret out of every record before it is written.

Secrets are the configured ones (app and AI-bot secret, token, EncodingAESKey, webhook keys,
the dashboard secret, the database password) plus whatever follows ``access_token=``,
``corpsecret=`` or ``key=`` in a URL and an ``"access_token": "..."`` in JSON: the access token
changes every two hours and is never in the config, so it is caught by its shape.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import IO, Iterable

from sqlalchemy.engine import make_url

from bot.config import Config, ConfigError, load_config

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
MIN_SECRET_LEN = 4  # shorter "secrets" (test values, typos) would mask ordinary words
_SHAPES = (re.compile(r"(\b(?:access_token|corpsecret|key)=)[^&\s\"'<>]+"),
           re.compile(r"(\"access_token\"\s*:\s*\")[^\"]+"))
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def configured_secrets(cfg: Config) -> list[str]:
    app, bot = cfg.wecom.app, cfg.wecom.aibot
    found = [app.secret, app.token, app.encoding_aes_key, bot.secret, bot.token,
             bot.encoding_aes_key, cfg.dashboard.secret, *cfg.wecom.webhooks.values()]
    try:
        found.append(make_url(cfg.database.url).password or "")
    except Exception:  # an odd URL fails where it is used, with its own message
        pass
    return found


class RedactFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN},
                              key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for shape in _SHAPES:
            text = shape.sub(lambda m: m.group(1) + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-arguments: keep what can be shown
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": datetime.fromtimestamp(record.created, timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        data.update((k, v) for k, v in vars(record).items()
                    if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(cfg: Config, *, stream: IO[str] | None = None) -> logging.Handler:
    """Replace any handler set up here before with one for ``cfg``; returns it (tests remove
    it again). Handlers others installed (pytest's) are left alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "safebot", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.safebot = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if cfg.logging.format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter(configured_secrets(cfg)))
    root.addHandler(handler)
    root.setLevel(cfg.logging.level)
    return handler


def setup_for_cli(config_path: str | None) -> None:
    """``main``'s one call: the command's config decides; one that cannot be read is reported
    by the command itself, so logging falls back to the defaults."""
    try:
        cfg = load_config(config_path, require_app=False)
    except ConfigError:
        cfg = Config()
    setup_logging(cfg)
