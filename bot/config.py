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
class WecomConfig:
    api_base_url: str = DEFAULT_API_BASE_URL
    replay_window_s: int = 300
    app: AppConfig = field(default_factory=AppConfig)
    webhooks: dict[str, str] = field(default_factory=dict)  # group name -> webhook key


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "data"  # photos and exports live under here


@dataclass(frozen=True)
class SchedulerConfig:
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    wecom: WecomConfig = field(default_factory=WecomConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

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
    if cfg.wecom.replay_window_s < 0:
        raise ConfigError("wecom.replay_window_s must be >= 0 (0 turns the check off)")
    try:
        ZoneInfo(cfg.scheduler.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"scheduler.timezone is not a known time zone: "
                          f"{cfg.scheduler.timezone!r}") from None
    app = cfg.wecom.app
    if require_app:
        for key in ("corp_id", "secret", "token", "encoding_aes_key"):
            if not getattr(app, key):
                raise ConfigError(f"wecom.app.{key} is required")
        if app.agent_id <= 0:
            raise ConfigError("wecom.app.agent_id is required (a positive integer)")
    if app.encoding_aes_key and len(app.encoding_aes_key) != 43:
        raise ConfigError("wecom.app.encoding_aes_key must be 43 characters")
