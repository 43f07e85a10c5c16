"""Configuration: one TOML file loaded into typed, validated objects.

Every key may also come from the environment as ``SAFEBOT_<SECTION>_<KEY>`` (dots and the key
joined by underscores, upper case), e.g. ``SAFEBOT_WECOM_APP_SECRET``; the environment wins, so
secrets need not sit in the file. A missing or invalid key raises ``ConfigError`` naming it.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_API_BASE_URL = "https://qyapi.weixin.qq.com"
DEFAULT_AIBOT_WS_URL = "wss://openws.work.weixin.qq.com"
DEFAULT_DATABASE_URL = "sqlite:///data/safebot.db"
ENV_CONFIG = "SAFEBOT_CONFIG"


class ConfigError(ValueError):
    """A configuration key is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class AppConfig:
    """The self-built app (自建应用): its callback secrets and API credentials."""

    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""


@dataclass(frozen=True)
class AibotConfig:
    """The AI bot (智能机器人) for group chats: a long connection (bot_id + secret) or JSON
    callbacks (token + encoding_aes_key). Off while the chosen mode's id is empty."""

    mode: str = "long_connection"   # or "callback"
    bot_id: str = ""
    secret: str = ""
    ws_url: str = DEFAULT_AIBOT_WS_URL
    token: str = ""
    encoding_aes_key: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.bot_id if self.mode == "long_connection" else self.token)


@dataclass(frozen=True)
class WecomConfig:
    api_base_url: str = DEFAULT_API_BASE_URL
    replay_window_s: int = 300
    app: AppConfig = field(default_factory=AppConfig)
    aibot: AibotConfig = field(default_factory=AibotConfig)
    webhooks: dict[str, str] = field(default_factory=dict)  # group name -> webhook key


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "data"  # photos and exports live under here


@dataclass(frozen=True)
class SchedulerConfig:
    timezone: str = "Asia/Shanghai"
    quiet_hours: str = "22:00-07:00"  # routine reminders wait; alerts never do
    sweep_every_min: int = 5          # how often the reminder sweeps run


@dataclass(frozen=True)
class RemindersConfig:
    deadline_days: tuple[int, ...] = (7, 3, 1, 0)  # remind this many days before a deadline
    digest_time: str = "07:35"           # the morning digest of routine reminders
    overdue_principal_days: int = 3      # overdue this long: the principal is told
    overdue_township_days: int = 7       # ... and then the township and the bureau
    due_soon_days: int = 2               # a friendly heads-up this many days before
    checkin_grace_min: int = 15          # a shift without a check-in escalates after this


@dataclass(frozen=True)
class MonthlyConfig:
    """Monthly updates (月报): month M's is due on ``due_day`` of month M+1; an unsubmitted one
    is still accepted, marked late, for ``late_days`` more days, then the month is locked."""

    due_day: int = 5
    late_days: int = 5


@dataclass(frozen=True)
class DashboardConfig:
    """The leaders' dashboard: links signed with ``secret`` (empty: one kept in the database),
    pointing at ``public_url`` (empty: ``http://<server.host>:<server.port>``)."""

    secret: str = ""
    public_url: str = ""


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"  # or "json": one JSON object a line (ts, level, logger, message, ...)
    level: str = "INFO"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    wecom: WecomConfig = field(default_factory=WecomConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    monthly: MonthlyConfig = field(default_factory=MonthlyConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.scheduler.timezone)


def load_config(path: str | Path | None = None, *, env: dict[str, str] | None = None,
                require_app: bool = True) -> Config:
    """Load ``path`` (or ``$SAFEBOT_CONFIG``), apply environment overrides, validate.

    ``require_app`` demands the self-built app's credentials (``serve``); the sandbox and the
    offline commands (import, invite, db) do without them.
    """
    env = dict(os.environ if env is None else env)
    path = path or env.get(ENV_CONFIG)
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    cfg = _build(Config, raw, "", env)
    _validate(cfg, require_app=require_app)
    return cfg


def _build(cls: type, raw: Any, prefix: str, env: dict[str, str]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{prefix.rstrip('.')}] must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown config key: {prefix}{key}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        name, kind = prefix + f.name, hints[f.name]
        if is_dataclass(kind):
            values[f.name] = _build(kind, raw.get(f.name, {}), name + ".", env)
            continue
        env_key = "SAFEBOT_" + name.replace(".", "_").upper()
        if env_key in env:
            values[f.name] = _coerce(env[env_key], kind, name, from_env=True)
        elif f.name in raw:
            values[f.name] = _coerce(raw[f.name], kind, name, from_env=False)
    return cls(**values)


def _coerce(value: Any, kind: Any, name: str, *, from_env: bool) -> Any:
    if kind == tuple[int, ...]:
        if from_env:
            value = [v for v in str(value).replace(",", " ").split()]
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise ConfigError(f"{name} must be a list of integers") from None
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            raise ConfigError(f"{name} must be a list of non-negative integers")
        return tuple(sorted(set(value), reverse=True))
    if kind == dict[str, str]:
        if from_env or not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()):
            raise ConfigError(f"[{name}] must be a table of names to non-empty strings")
        return dict(value)
    if kind is int:
        if from_env:
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def _validate(cfg: Config, *, require_app: bool) -> None:
    if not 0 < cfg.server.port < 65536:
        raise ConfigError(f"server.port must be 1..65535, got {cfg.server.port}")
    url = cfg.database.url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")):
        raise ConfigError("database.url must start with sqlite:/// or postgresql://, "
                          f"got {url!r}")
    if not cfg.wecom.api_base_url.startswith(("http://", "https://")):
        raise ConfigError("wecom.api_base_url must be an http(s) URL")
    if cfg.dashboard.public_url and not cfg.dashboard.public_url.startswith(("http://",
                                                                              "https://")):
        raise ConfigError("dashboard.public_url must be an http(s) URL")
    if cfg.wecom.replay_window_s < 0:
        raise ConfigError("wecom.replay_window_s must be >= 0 (0 turns the check off)")
    try:
        ZoneInfo(cfg.scheduler.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"scheduler.timezone is not a known time zone: "
                          f"{cfg.scheduler.timezone!r}") from None
    _validate_clock_times(cfg)
    app = cfg.wecom.app
    if require_app:
        for key in ("corp_id", "secret", "token", "encoding_aes_key"):
            if not getattr(app, key):
                raise ConfigError(f"wecom.app.{key} is required")
        if app.agent_id <= 0:
            raise ConfigError("wecom.app.agent_id is required (a positive integer)")
    if app.encoding_aes_key and len(app.encoding_aes_key) != 43:
        raise ConfigError("wecom.app.encoding_aes_key must be 43 characters")
    _validate_aibot(cfg.wecom.aibot)
    if not 1 <= cfg.monthly.due_day <= 28:
        raise ConfigError("monthly.due_day must be 1..28 (a day every month has)")
    if not 0 <= cfg.monthly.late_days <= 25:
        raise ConfigError("monthly.late_days must be 0..25")
    if cfg.logging.format not in ("text", "json"):
        raise ConfigError(f"logging.format must be text or json, got {cfg.logging.format!r}")
    if cfg.logging.level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level must be DEBUG, INFO, WARNING or ERROR, "
                          f"got {cfg.logging.level!r}")


def _validate_aibot(bot: AibotConfig) -> None:
    """Off when none of the mode's keys is set; otherwise every one of them is required."""
    if bot.mode not in ("long_connection", "callback"):
        raise ConfigError("wecom.aibot.mode must be long_connection or callback, "
                          f"got {bot.mode!r}")
    if not bot.ws_url.startswith(("ws://", "wss://")):
        raise ConfigError("wecom.aibot.ws_url must be a ws:// or wss:// URL")
    keys = ("bot_id", "secret") if bot.mode == "long_connection" else ("token", "encoding_aes_key")
    if any(getattr(bot, k) for k in keys):
        for key in keys:
            if not getattr(bot, key):
                raise ConfigError(f"wecom.aibot.{key} is required in {bot.mode} mode")
    if bot.mode == "callback" and bot.encoding_aes_key and len(bot.encoding_aes_key) != 43:
        raise ConfigError("wecom.aibot.encoding_aes_key must be 43 characters")


def parse_hhmm(text: str) -> tuple[int, int]:
    hours, _, minutes = text.strip().partition(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(text)
    return h, m


def _validate_clock_times(cfg: Config) -> None:
    start, _, end = cfg.scheduler.quiet_hours.partition("-")
    for name, text in (("scheduler.quiet_hours", start), ("scheduler.quiet_hours", end),
                       ("reminders.digest_time", cfg.reminders.digest_time)):
        try:
            parse_hhmm(text)
        except ValueError:
            raise ConfigError(f"{name} must look like 22:00-07:00 / 07:35, got "
                              f"{cfg.scheduler.quiet_hours if 'quiet' in name else text!r}") from None
    if not 1 <= cfg.scheduler.sweep_every_min <= 60:
        raise ConfigError("scheduler.sweep_every_min must be 1..60")
    for key in ("overdue_principal_days", "overdue_township_days", "due_soon_days",
                "checkin_grace_min"):
        if getattr(cfg.reminders, key) < 0:
            raise ConfigError(f"reminders.{key} must be >= 0")
