"""``safebot sandbox``: the real service and a local WeCom in one process on 127.0.0.1."""
from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import create_app, run
from bot.config import Config, load_config
from bot.sandbox.settings import HOST, origin, sandbox_config
from bot.sandbox.web import PREFIX, add_sandbox

SHUTDOWN_TIMEOUT_S = 5


def run_sandbox(*, config_path: str | Path | None, port: int, data_dir: Path) -> int:
    """Serve the sandbox until interrupted. ``port`` 0 picks a free port."""
    if not 0 <= port < 65536:
        print(f"safebot sandbox: port must be 0..65535, got {port}", file=sys.stderr)
        return 2
    try:
        sock, cfg = prepare(config_path=config_path, port=port, data_dir=data_dir)
    except OSError as exc:
        print(f"safebot sandbox: cannot listen on {HOST}:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    url = page_url(cfg)

    def announce(_aiohttp_banner: str) -> None:  # called once the server is listening
        print(f"safebot sandbox: open {url} in a browser (Ctrl+C to stop)", flush=True)

    run(build_app(cfg), sock=sock, print=announce, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    return 0


def prepare(*, config_path: str | Path | None, port: int,
            data_dir: Path) -> tuple[socket.socket, Config]:
    """Load the config, bind the port, and make the sandbox config for the port actually bound
    (the sandbox's WeCom and fake API live at that address, so it must be known first)."""
    base = load_config(config_path, require_app=False)
    sock = bind(port)
    return sock, sandbox_config(base, port=sock.getsockname()[1], data_dir=data_dir)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1, bound before the app exists so its port is known."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def build_app(cfg: Config, **options: Any) -> web.Application:
    """The service's app with the sandbox added; ``cfg`` comes from ``sandbox_config``;
    ``options`` go to ``create_app`` (tests pass ``sweeps=()``)."""
    app = create_app(cfg, **options)
    add_sandbox(app, cfg)
    return app


def page_url(cfg: Config) -> str:
    return origin(cfg) + PREFIX + "/"
