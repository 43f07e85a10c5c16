"""Building blocks for fault scenarios that run the real service as a separate process.

Used by ``bench/faults_process.py`` and ``tests/test_faults_process.py``; other fault
benchmarks may use them too. Everything binds to 127.0.0.1 and is bounded in time.

- ``scratch_postgres`` / ``prepare_database``: a database of its own beside a PostgreSQL URL
  (dropped afterwards), migrated and seeded with the demo district.
- ``write_config``: a ``safebot serve`` TOML for a database, a port and a WeCom base URL.
- ``ServiceProcess``: ``safebot serve`` in its own session: start, wait for ``/healthz``,
  ``kill -9``, stop. ``lease_s`` runs it through ``python -m bench.harness serve``, which is
  ``safebot serve`` with a shorter outbox lease (so a test need not wait the real 60 s).
- ``FakeWeComProcess``: the sandbox's fake WeCom API in its own process
  (``python -m bench.harness fake-wecom``) with every push it received readable over HTTP and
  its faults switchable; ``LocalFakeWeCom`` gives the same view of an in-process fake (tests).
- ``CallbackClient``: validly signed app callbacks as WeCom sends them, with WeCom's retries:
  no answer (timeout, refused, non-200) and the same message is delivered again, same MsgId.
- ``PrivatePostgres``: a throwaway PostgreSQL cluster (``initdb`` in a temporary directory, its
  own port) that can be restarted without disturbing anyone else's database.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import aiohttp

from bench.callback_load import config_toml, free_port, safebot_command

REPO = Path(__file__).resolve().parent.parent
CALLBACK_PATH = "/wecom/app/callback"
CORP_ID = "wwfaultcorp000001"
AGENT_ID = 1000002
SECRET = "fault-secret-not-real"
TOKEN = "faulttoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ERROR_REPLY = "处理这条消息时出错了"   # templates/common/error.txt.j2
WORKING_REPLY = "正在处理"           # templates/common/working.txt.j2


# --- databases -------------------------------------------------------------------------------

@contextmanager
def scratch_postgres(base_url: str, prefix: str = "safebot_faults") -> Iterator[str]:
    """A new database beside the one ``base_url`` names (never touched); dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from bot.db import engine_url

    base = make_url(engine_url(base_url))
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # no pool: a connection kept across a restart of the server would be dead at the drop
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare_database(url: str) -> None:
    """Migrations, then the demo district (the database must be empty)."""
    from bot.db import Database
    from bot.sandbox.demo import seed_demo
    from models.migrate import upgrade

    db = Database(url)
    try:
        upgrade(db.engine)
        if not db.call(seed_demo):
            raise RuntimeError("the scenario's database was not empty")
    finally:
        db.close()


def write_config(workdir: Path, *, database_url: str, port: int, api_base_url: str,
                 name: str = "serve") -> Path:
    return config_toml(workdir / f"{name}.toml", port=port, database_url=database_url,
                       api_base_url=api_base_url, data_dir=workdir / "data",
                       corp_id=CORP_ID, secret=SECRET, token=TOKEN)


# --- the service -----------------------------------------------------------------------------

class ServiceProcess:
    """``safebot serve`` as a subprocess in its own session (so a signal reaches only it)."""

    def __init__(self, config: Path, port: int, log: Path, *, lease_s: float | None = None):
        self.config, self.port, self.log_path, self.lease_s = config, port, log, lease_s
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def callback_url(self) -> str:
        return self.base + CALLBACK_PATH

    def argv(self) -> list[str]:
        if self.lease_s is None:
            return [*safebot_command(), "serve", "--config", str(self.config)]
        return [sys.executable, "-m", "bench.harness", "serve", "--config", str(self.config),
                "--lease-s", str(self.lease_s)]

    async def start(self, timeout: float = 60.0) -> float:
        """Start it and wait until ``/healthz`` answers; the seconds that took."""
        started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEBOT_")}
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), cwd=REPO, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.starts += 1
        await self.wait_healthy(timeout)
        return time.monotonic() - started

    async def wait_healthy(self, timeout: float, *, ok_only: bool = False) -> dict[str, Any]:
        """Poll ``/healthz`` until it answers 200 (with ``ok_only``: status ``ok``)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"safebot serve exited early:\n{self.tail()}")
                last = await self.health(http)
                if last.get("http") == 200 and (not ok_only or last.get("status") == "ok"):
                    return last
                await asyncio.sleep(0.1)
        raise RuntimeError(f"safebot serve not healthy within {timeout:.0f} s ({last}):\n"
                           + self.tail())

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """``/healthz`` as a dict plus ``http`` (the status code), or ``{"http": None}``."""
        try:
            async with http.get(self.base + "/healthz",
                                timeout=aiohttp.ClientTimeout(total=3)) as resp:
                body = await resp.json(content_type=None)
                return {**body, "http": resp.status}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return {"http": None}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL, no goodbye: nothing is flushed, marked or closed."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """SIGINT (graceful), then SIGKILL after 20 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def serve_with_lease(config: str, lease_s: float) -> int:
    """``safebot serve`` whose outbox leases last ``lease_s`` instead of 60 s (nothing else
    changes: the claim's default is replaced before the service starts)."""
    from datetime import timedelta

    from bot.cli import main
    from models import outbox

    outbox.claim.__kwdefaults__["lease"] = timedelta(seconds=lease_s)
    return main(["serve", "--config", config])


# --- the fake WeCom --------------------------------------------------------------------------

@dataclass(frozen=True)
class SeenPush:
    """One push the fake WeCom received (an app message to one member, or a webhook)."""

    to: str
    msgtype: str
    body: dict[str, Any]
    dropped: bool      # over a rate limit: accepted and never delivered
    duplicate: bool    # the same content to the same member within the duplicate check
    at: float          # when WeCom received it (epoch seconds)

    @property
    def delivered(self) -> bool:
        return not (self.dropped or self.duplicate)

    @property
    def digest(self) -> str:
        return content_digest(self.to, self.msgtype, self.body)


def content_digest(to: str, msgtype: str, body: dict[str, Any]) -> str:
    """Who and what, as WeCom's duplicate check compares them (an outbox row's payload is sent
    as the message body verbatim)."""
    raw = json.dumps([to, msgtype, body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _seen(p: dict[str, Any]) -> SeenPush:
    return SeenPush(p["to"], p["msgtype"], p["body"], p["dropped"], p["duplicate"], p["at"])


class FakeWeComProcess:
    """``python -m bench.harness fake-wecom`` as a subprocess; stopped with the scenario."""

    def __init__(self, log: Path, *, delay_s: float = 0.0, rate_limits: bool = True) -> None:
        self.log_path, self.delay_s, self.rate_limits = log, delay_s, rate_limits
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        argv = [sys.executable, "-m", "bench.harness", "fake-wecom", "--port", str(self.port),
                "--delay", str(self.delay_s)] + ([] if self.rate_limits else ["--no-limits"])
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake WeCom exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                await self.stats()
                return
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
        raise RuntimeError("fake WeCom did not start")

    async def _get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + path,
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
                return await resp.json()

    async def stats(self) -> dict[str, Any]:
        return await self._get("/control/faults")

    async def received(self) -> int:
        """Pushes received so far (delivered, dropped and duplicate)."""
        return int((await self.stats())["pushes"])

    async def pushes(self) -> list[SeenPush]:
        return [_seen(p) for p in await self._get("/control/pushes")]

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Any of bot/sandbox/faults_api.py's switches: delay_s, down, fail, reset, ..."""
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url + "/control/faults", json=faults) as resp:
                return await resp.json()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class LocalFakeWeCom:
    """The same view of a ``FakeWeCom`` running in this process (tests' ``fake_wecom``)."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    @property
    def url(self) -> str:
        return self.fake.url

    async def received(self) -> int:
        return len(self.fake.pushes)

    async def pushes(self) -> list[SeenPush]:
        return [_seen(p.as_json()) for p in self.fake.pushes]

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        from bot.sandbox import faults_api

        for change in faults_api.parse(faults):
            change(self.fake)
        return faults_api.state(self.fake)


def run_fake_wecom(port: int, delay_s: float, rate_limits: bool) -> None:
    """The fake WeCom API plus ``/control/pushes`` (every push, in order) and
    ``/control/faults`` (GET: counters; POST: switches, as the sandbox's ``api/faults``)."""
    from aiohttp import web

    from bot.clock import Clock
    from bot.sandbox import faults_api
    from bot.sandbox.fake_api import FakeWeCom

    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=Clock(), rate_limits=rate_limits)
    fake.faults.delay_s = delay_s
    app = web.Application()
    app.router.add_routes(fake.routes())

    async def pushes(_: web.Request) -> web.Response:
        return web.json_response([p.as_json() for p in fake.pushes])

    async def faults(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                changes = faults_api.parse(await request.json())
            except Exception as exc:  # a bad switch: say which, change nothing
                return web.json_response({"error": str(exc)}, status=400)
            for change in changes:
                change(fake)
        return web.json_response(faults_api.state(fake))

    app.router.add_get("/control/pushes", pushes)
    app.router.add_route("*", "/control/faults", faults)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- WeCom's side of the callback ------------------------------------------------------------

@dataclass
class Exchange:
    """One message as WeCom delivers it: the first try and its retries, same MsgId."""

    user: str
    text: str
    msg_id: str
    tries: list[str] = field(default_factory=list)  # "200", "200 empty", "503", "timeout", ...
    status: int | None = None   # the answer WeCom finally got (None: never answered)
    reply: str | None = None    # the decrypted reply text, if any
    answered_at: float | None = None  # time.monotonic() of the 200

    @property
    def answered(self) -> bool:
        return self.status == 200

    @property
    def empty(self) -> bool:
        """200 without a reply: what a duplicate delivery gets."""
        return self.status == 200 and self.reply is None

    @property
    def error_reply(self) -> bool:
        return self.reply is not None and ERROR_REPLY in self.reply

    @property
    def dedupe_key(self) -> str:
        return f"app:msg:{self.msg_id}"


class CallbackClient:
    """Signed app callbacks, built and opened with the sandbox's own sender code."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, retries: int = 3,
                 retry_pause_s: float = 1.0) -> None:
        from bot.crypto import CallbackCrypto
        from bot.sandbox.sender import AppCallbackSender

        self.url, self.timeout_s = url, timeout_s
        self.retries, self.retry_pause_s = retries, retry_pause_s
        self.crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
        self.sender = AppCallbackSender(http=None, url=url, crypto=self.crypto,  # type: ignore
                                        agent_id=AGENT_ID)
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "CallbackClient":
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()

    def new_msg_id(self) -> str:
        return self.sender.new_msg_id()

    async def send(self, user: str, text: str, *, msg_id: str | None = None,
                   retries: int | None = None) -> Exchange:
        """Deliver like WeCom: on no answer within ``timeout_s`` or a non-200, deliver the same
        message again after ``retry_pause_s``, up to ``retries`` more times."""
        from bot.app_xml import cdata

        ex = Exchange(user, text, msg_id or self.new_msg_id())
        plaintext = self.sender.message_xml(user, "text", f"<Content>{cdata(text)}</Content>",
                                            msg_id=ex.msg_id)
        left = self.retries if retries is None else retries
        while True:
            await self._try(ex, plaintext)
            if ex.answered or left <= 0:
                return ex
            left -= 1
            await asyncio.sleep(self.retry_pause_s)

    async def _try(self, ex: Exchange, plaintext: str) -> None:
        assert self.http is not None, "use CallbackClient as an async context manager"
        query, body = self.crypto.sign_callback(plaintext, agent_id=AGENT_ID)
        try:
            async with self.http.post(self.url, params=query, data=body.encode(),
                                      headers={"Content-Type": "text/xml"},
                                      timeout=aiohttp.ClientTimeout(total=self.timeout_s)
                                      ) as resp:
                raw = await resp.text()
                status = resp.status
        except asyncio.TimeoutError:
            ex.tries.append("timeout")
            return
        except aiohttp.ClientError as exc:
            ex.tries.append(type(exc).__name__)
            return
        ex.tries.append(f"{status}" + (" empty" if status == 200 and not raw else ""))
        if status != 200:
            return
        ex.status, ex.answered_at = status, time.monotonic()
        ex.reply = _reply_text(self.crypto.open_reply(raw)) if raw else None


def _reply_text(reply_xml: str) -> str:
    from bot.sandbox.sender import Delivery

    return Delivery(200, reply_xml).reply_text or ""


# --- a private PostgreSQL --------------------------------------------------------------------

def _pg_bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


class PrivatePostgres:
    """A throwaway cluster in a temporary directory on its own port, run as the ``postgres``
    user when we are root (initdb refuses root). ``restart()`` is ``pg_ctl restart -m fast``,
    what ``pg_ctlcluster ... restart`` does, but it disturbs nobody."""

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL's initdb/pg_ctl not found")
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="safebot-pg-"))
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def _options(self) -> str:
        return (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                "-c fsync=off -c max_connections=50 -c shared_buffers=16MB")

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                  "-o", self._options(), "start")

    def restart(self, down_s: float = 0.0) -> float:
        """Restart it (fast shutdown: connections are cut), staying down ``down_s`` seconds
        in between; the seconds it was away."""
        started = time.monotonic()
        pg_ctl = ("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w")
        if down_s <= 0:
            self._run(*pg_ctl, "-m", "fast", "-o", self._options(), "restart")
        else:
            self._run(*pg_ctl, "-m", "fast", "stop")
            time.sleep(down_s)
            self._run(*pg_ctl, "-o", self._options(), "start")
        return time.monotonic() - started

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop",
                          timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.harness")
    sub = parser.add_subparsers(dest="what", required=True)
    fake = sub.add_parser("fake-wecom", help="the fake WeCom API with /control endpoints")
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--delay", type=float, default=0.0, help="seconds every API call waits")
    fake.add_argument("--no-limits", action="store_true", help="no per-member rate limits")
    serve = sub.add_parser("serve", help="safebot serve with a shorter outbox lease")
    serve.add_argument("--config", required=True)
    serve.add_argument("--lease-s", type=float, required=True)
    args = parser.parse_args(argv)
    if args.what == "fake-wecom":
        run_fake_wecom(args.port, args.delay, not args.no_limits)
        return 0
    return serve_with_lease(args.config, args.lease_s)


if __name__ == "__main__":
    raise SystemExit(main())
