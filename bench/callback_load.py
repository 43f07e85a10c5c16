"""Load benchmark of the app callback path: ``safebot serve`` on SQLite against a bare ceiling.

    python -m bench.callback_load [--runs N] [--duration S] [--connections C]

What it does, all on 127.0.0.1 and bounded in time:

1. makes a temporary directory with a config TOML (SQLite file, free ports, test credentials,
   ``replay_window_s`` 300), runs ``safebot db upgrade`` and seeds the demo district;
2. starts ``safebot serve --config ...`` as a subprocess, waits until it answers and checks one
   real callback end to end (the reply decrypts and is demo-liaison's 帮助 text);
3. starts ``python -m bench.bare_server`` (the same checks, crypto, parse and reply code, no
   database) as a second subprocess, answering the very text the service answered;
4. for every measurement, pre-generates distinct, validly signed text callbacks ("帮助" from the
   registered demo-liaison, each with its own MsgId and a fresh timestamp) into a file, and runs
   ``wrk -t2 -c64 -d10s --latency -s bench/callback.lua`` against one server, alternating
   service and bare for ``--runs`` rounds;
5. counts errors: socket errors, non-200 answers, and 200 answers without an encrypted reply
   (an empty 200 is what a duplicate gets; it is not a success), and compares the rows added to
   ``processed_callback`` with the requests the service answered;
6. prints requests/s, p50 and p99 of both (medians over the runs), the errors, the ratio
   service/bare and whether the issue's goal is met (ratio >= 0.5, p99 < 50 ms, zero errors).

Both servers are killed on exit, whatever happens. Needs wrk (Debian: ``apt-get install wrk``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

from bot.app_xml import cdata
from bot.crypto import CallbackCrypto
from bot.sandbox.demo import PEOPLE
from bot.sandbox.sender import AppCallbackSender, Delivery

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LUA = HERE / "callback.lua"
CALLBACK_PATH = "/wecom/app/callback"

CORP_ID = "wwbenchcorp000001"
AGENT_ID = 1000002
SECRET = "bench-secret-not-real"
TOKEN = "benchtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SENDER = "demo-liaison"
TEXT = "帮助"

GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0


@dataclass
class Result:
    target: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    non200: int
    empty: int
    bad_body: int
    exhausted: int
    dedupe_rows: int | None = None  # rows added to processed_callback (service only)
    cpu: str = ""                   # CpuMeter's summary of the measurement
    other_cores: float | None = None  # CPU used by processes outside the benchmark

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non200 + self.empty + self.bad_body

    def line(self) -> str:
        extra = f"  dedupe rows +{self.dedupe_rows}" if self.dedupe_rows is not None else ""
        warn = f"  (request file exhausted {self.exhausted}x!)" if self.exhausted else ""
        return (f"{self.target:<8} {self.rps:9.0f} req/s  p50 {self.p50_ms:6.2f} ms  "
                f"p90 {self.p90_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  max {self.max_ms:7.1f} ms  "
                f"errors {self.errors} (socket {self.socket_errors}, non-200 {self.non200}, "
                f"empty 200 {self.empty}, bad body {self.bad_body}){extra}{warn}")


# --- setup -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_toml(path: Path, *, port: int, database_url: str, api_base_url: str,
                data_dir: Path, replay_window_s: int = 300, extra: str = "",
                corp_id: str = CORP_ID, secret: str = SECRET, token: str = TOKEN) -> Path:
    """The TOML config every benchmark gives ``safebot serve``: 127.0.0.1, a test app's
    credentials (each script's fake WeCom has its own); ``extra`` adds whole sections."""
    path.write_text(f"""\
[server]
host = "127.0.0.1"
port = {port}

[database]
url = "{database_url}"

[storage]
data_dir = "{data_dir}"

[wecom]
api_base_url = "{api_base_url}"
replay_window_s = {replay_window_s}

[wecom.app]
corp_id = "{corp_id}"
agent_id = {AGENT_ID}
secret = "{secret}"
token = "{token}"
encoding_aes_key = "{AES_KEY}"
{extra}""", encoding="utf-8")
    return path


def write_config(workdir: Path, port: int) -> tuple[Path, Path]:
    db_path = workdir / "safebot.db"
    config = config_toml(workdir / "safebot.toml", port=port, database_url=f"sqlite:///{db_path}",
                         api_base_url="http://127.0.0.1:9", data_dir=workdir / "data")
    return config, db_path


def safebot_command() -> list[str]:
    script = Path(sys.executable).parent / "safebot"
    if script.exists():
        return [str(script)]
    found = shutil.which("safebot")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def prepare_database(config: Path, db_path: Path) -> None:
    proc = subprocess.run([*safebot_command(), "db", "upgrade", "--config", str(config)],
                          cwd=REPO, timeout=120, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"safebot db upgrade failed:\n{proc.stdout}\n{proc.stderr}")
    from bot.db import Database
    from bot.sandbox.demo import seed_demo

    db = Database(f"sqlite:///{db_path}")
    try:
        if not db.call(seed_demo):
            raise RuntimeError("the benchmark database was not empty")
    finally:
        db.close()


class Server:
    """A subprocess in its own session; stopped with SIGINT, then SIGKILL, always."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name, self.argv, self.port, self.log_path = name, argv, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def start(self, timeout: float = 60.0) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, cwd=REPO, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.tail())
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return
            except urllib.error.HTTPError:  # any HTTP answer means it is up (GET is 403/405)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {timeout:.0f} s:\n"
                           + self.tail())

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)  # its own session: only what we started
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        self._log.close()


# --- requests --------------------------------------------------------------------------------

class CallbackFactory:
    """Distinct, validly signed callbacks, built with the sandbox's own sender code."""

    def __init__(self, senders: list[str]) -> None:
        self.crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
        self.sender = AppCallbackSender(http=None, url="", crypto=self.crypto,  # type: ignore[arg-type]
                                        agent_id=AGENT_ID)
        self.senders = senders

    def one(self, user: str = SENDER, text: str = TEXT) -> tuple[str, str]:
        """(path?query, body) of one callback with the next MsgId."""
        plaintext = self.sender.message_xml(user, "text", f"<Content>{cdata(text)}</Content>")
        query, body = self.crypto.sign_callback(plaintext, agent_id=AGENT_ID)
        return f"{CALLBACK_PATH}?{urlencode(query)}", body

    def lines(self, count: int) -> Iterator[str]:
        now = int(time.time())
        content = f"<Content>{cdata(TEXT)}</Content>"
        senders, n = self.senders, len(self.senders)
        for i in range(count):
            plaintext = self.sender.message_xml(senders[i % n], "text", content, create_time=now)
            query, body = self.crypto.sign_callback(plaintext, timestamp=str(now),
                                                    agent_id=AGENT_ID)
            yield f"{CALLBACK_PATH}?{urlencode(query)}\t{body}\n"

    def write(self, path: Path, count: int) -> float:
        started = time.perf_counter()
        with path.open("w", encoding="utf-8") as f:
            f.writelines(self.lines(count))
        return time.perf_counter() - started


def sanity_check(factory: CallbackFactory, url_base: str) -> str:
    """One real callback: 200, an encrypted reply that decrypts to the 帮助 text."""
    target, body = factory.one()
    req = urllib.request.Request(url_base + target, data=body.encode(), method="POST",
                                 headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        status, raw = resp.status, resp.read().decode()
    if status != 200 or not raw:
        raise RuntimeError(f"sanity check: status {status}, body {raw[:200]!r}")
    reply = factory.crypto.open_reply(raw)
    if "你可以使用" not in reply:
        raise RuntimeError(f"sanity check: not the 帮助 reply of a registered sender: {reply!r}")
    return reply


# --- wrk -------------------------------------------------------------------------------------

def run_wrk(wrk: str, url: str, requests_file: Path, *, threads: int, connections: int,
            duration: int, target: str, verbose: bool) -> Result:
    env = dict(os.environ, SAFEBOT_BENCH_REQUESTS=str(requests_file),
               SAFEBOT_BENCH_THREADS=str(threads))
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
            "--timeout", "5s", "-s", str(LUA), url]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=duration + 120)
    if verbose:
        print(proc.stdout, proc.stderr, sep="\n")
    line = next((l for l in proc.stdout.splitlines() if l.startswith("SAFEBOT_BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    d = json.loads(line.split(" ", 1)[1])
    return Result(target=target, requests=d["requests"], seconds=d["duration_us"] / 1e6,
                  p50_ms=d["p50_us"] / 1000, p90_ms=d["p90_us"] / 1000,
                  p99_ms=d["p99_us"] / 1000, max_ms=d["max_us"] / 1000,
                  socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
                  non200=d["non200"], empty=d["empty"], bad_body=d["bad_body"],
                  exhausted=d["exhausted"])


class CpuMeter:
    """CPU seconds used during a measurement: the whole machine, the servers, wrk, this driver.

    "other" = machine - ours: work by processes that are not part of the benchmark (other test
    runs on the same machine). Linux /proc only; elsewhere it reports nothing.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal (guest is already in user)
            user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
            busy = user + nice + system + irq + softirq
            servers = 0
            for pid in self.pids:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read().rsplit(")", 1)[1].split()
                servers += int(stat[11]) + int(stat[12])  # utime, stime (all threads)
        except (OSError, ValueError, IndexError):
            return None
        import resource
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
        mine = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return busy / self.tick, servers / self.tick, mine

    def stop(self, seconds: float) -> tuple[str, float | None]:
        end = self._sample()
        if self.start is None or end is None or seconds <= 0:
            return "", None
        machine, servers, mine = (e - s for e, s in zip(end, self.start))
        other = max(0.0, machine - servers - mine)
        cores = os.cpu_count() or 1
        return (f"cpu: machine {machine / seconds:.2f} of {cores} cores, servers "
                f"{servers / seconds:.2f}, wrk+driver {mine / seconds:.2f}, "
                f"other processes {other / seconds:.2f}"), other / seconds


def dedupe_rows(db_path: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM processed_callback").fetchone()[0]
    finally:
        conn.close()


def median(results: list[Result], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results)


def loadavg() -> str:
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


# --- main ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.callback_load",
                                description="Load benchmark of the app callback path.")
    p.add_argument("--runs", type=int, default=1, help="rounds of service+bare (medians); 1")
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement; 10")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections; 64")
    p.add_argument("--threads", type=int, default=2, help="wrk threads; 2")
    p.add_argument("--warmup", type=int, default=2, help="seconds of discarded warm-up load "
                                                         "per server; 2 (0: none)")
    p.add_argument("--requests", type=int, default=0,
                   help="callbacks generated per measurement (default: 8,000 per second, "
                        "at least 20,000)")
    p.add_argument("--senders", type=int, default=1,
                   help="registered senders to rotate over (1 = demo-liaison only; up to "
                        f"{len(PEOPLE)}, the demo district's people)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--verbose", action="store_true", help="print wrk's own output")
    p.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = p.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.connections < args.threads or args.threads < 1:
        p.error("need --runs >= 1, --duration >= 1, --threads >= 1, --connections >= --threads")
    if not 1 <= args.senders <= len(PEOPLE):
        p.error(f"--senders must be 1..{len(PEOPLE)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk\n"
              "(elsewhere: https://github.com/wg/wrk — build it and put it on PATH)",
              file=sys.stderr)
        return 2

    def on_term(signum, frame):  # run the finally blocks on SIGTERM/SIGHUP too
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    per_measurement = args.requests or max(20_000, 8_000 * args.duration)
    senders = [SENDER] + [p[0] for p in PEOPLE if p[0] != SENDER][: args.senders - 1]
    load_before = loadavg()
    print(f"load average before: {load_before}   cpus: {os.cpu_count()}   "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, runs {args.runs}, "
          f"senders {', '.join(senders)}")

    workdir = Path(tempfile.mkdtemp(prefix="safebot-bench-"))
    servers: list[Server] = []
    try:
        service_port, bare_port = free_port(), free_port()
        while bare_port == service_port:
            bare_port = free_port()
        config, db_path = write_config(workdir, service_port)
        prepare_database(config, db_path)
        service = Server("safebot serve", [*safebot_command(), "serve", "--config", str(config)],
                         service_port, workdir / "serve.log")
        servers.append(service)
        service.start()
        factory = CallbackFactory(senders)
        reply = sanity_check(factory, f"http://127.0.0.1:{service_port}")
        reply_text = Delivery(200, reply).reply_text or ""
        print(f"sanity check: service answered {SENDER}'s 帮助 with an encrypted reply "
              f"({len(reply_text)} characters of text); the bare server answers the same text")
        reply_file = workdir / "reply.txt"
        reply_file.write_text(reply_text, encoding="utf-8")
        bare = Server("bare server",
                      [sys.executable, "-m", "bench.bare_server", "--config", str(config),
                       "--port", str(bare_port), "--reply-file", str(reply_file)],
                      bare_port, workdir / "bare.log")
        servers.append(bare)
        bare.start()
        sanity_check(factory, f"http://127.0.0.1:{bare_port}")

        requests_file = workdir / "requests.txt"
        if args.warmup:
            for server, name in ((service, "service"), (bare, "bare")):
                factory.write(requests_file, max(5_000, 8_000 * args.warmup))
                run_wrk(wrk, server.url, requests_file, threads=args.threads,
                        connections=args.connections, duration=args.warmup, target=name,
                        verbose=False)
            print(f"warm-up: {args.warmup} s against each server (discarded)")

        results: dict[str, list[Result]] = {"service": [], "bare": []}
        for run in range(args.runs):
            order = [("service", service), ("bare", bare)]
            if run % 2:
                order.reverse()  # alternate who goes first
            for name, server in order:
                took = factory.write(requests_file, per_measurement)
                before = dedupe_rows(db_path) if name == "service" else None
                time.sleep(1)  # let the previous run's tail (WAL checkpoint, GC) settle
                meter = CpuMeter([srv.proc.pid for srv in servers if srv.proc])
                started = time.monotonic()
                result = run_wrk(wrk, server.url, requests_file, threads=args.threads,
                                 connections=args.connections, duration=args.duration,
                                 target=name, verbose=args.verbose)
                result.cpu, result.other_cores = meter.stop(time.monotonic() - started)
                if before is not None:
                    result.dedupe_rows = dedupe_rows(db_path) - before
                results[name].append(result)
                print(f"run {run + 1}/{args.runs}  {result.line()}   "
                      f"[{per_measurement} callbacks generated in {took:.1f} s]")
                if result.cpu:
                    print(f"             {result.cpu}")
                for srv in servers:
                    if srv.proc is None or srv.proc.poll() is not None:
                        raise RuntimeError(f"{srv.name} died:\n{srv.tail()}")
        return report(results, args, load_before)
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(results: dict[str, list[Result]], args: argparse.Namespace, load_before: str) -> int:
    svc, bare = results["service"], results["bare"]
    label = "median of %d runs" % args.runs if args.runs > 1 else "1 run"
    print(f"\n== {label}: wrk -t{args.threads} -c{args.connections} -d{args.duration}s ==")
    print(f"{'':<8} {'req/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}  errors")
    for name, rs in (("service", svc), ("bare", bare)):
        print(f"{name:<8} {median(rs, 'rps'):9.0f}  {median(rs, 'p50_ms'):7.2f}  "
              f"{median(rs, 'p99_ms'):7.2f}  {sum(r.errors for r in rs)}")
    ratio = median(svc, "rps") / median(bare, "rps") if median(bare, "rps") else 0.0
    p99 = median(svc, "p99_ms")
    errors = sum(r.errors for r in svc)
    answered = sum(r.requests for r in svc)
    rows = sum(r.dedupe_rows or 0 for r in svc)
    exhausted = sum(r.exhausted for r in svc + bare)
    print(f"ratio service/bare: {ratio:.2f}")
    print(f"dedupe rows written: {rows} for {answered} answered requests "
          "(a few more rows than answers is normal: requests in flight when wrk stops)")
    if exhausted:
        print(f"WARNING: a request file ran out {exhausted} times; raise --requests")
    ok_ratio, ok_p99, ok_err = ratio >= GOAL_RATIO, p99 < GOAL_P99_MS, errors == 0
    print(f"goal: ratio >= {GOAL_RATIO} {'PASS' if ok_ratio else 'FAIL'}; "
          f"p99 < {GOAL_P99_MS:.0f} ms {'PASS' if ok_p99 else 'FAIL'}; "
          f"zero errors {'PASS' if ok_err else 'FAIL'}")
    print(f"load average before: {load_before}   after: {loadavg()}")
    others = [r.other_cores for r in svc + bare if r.other_cores is not None]
    if others:
        busy = max(others) > 0.25
        print(f"other processes used up to {max(others):.2f} cores during the measurements"
              + ("  -> the machine was BUSY: these numbers are too low" if busy else
                 " (quiet machine)"))
    met = ok_ratio and ok_p99 and ok_err
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
