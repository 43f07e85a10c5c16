"""A tiny Prometheus registry (text exposition format 0.0.4): counters and histograms kept in
memory, one set per application, rendered at scrape time. No client library: what we need is a
few dozen lines, and every instance is scraped on its own.

Counted here: callback POSTs by door and outcome with their latency (the middleware in
``bot.ops.web``), and outbox pushes by channel and result (``OutboxSender``'s ``on_outcome``).
Values that live in the database (the outbox depth) are read when scraped, not counted.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

from aiohttp import web

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PUSH_RESULTS = {"sent": "sent", "failed": "failed", "retry": "retried"}
# A door may say more than its status code does (a WeCom retry answered 200 is a duplicate).
OUTCOME_KEY: object = (web.RequestKey("callback_outcome", str)
                       if hasattr(web, "RequestKey") else "callback_outcome")


def note_outcome(request: web.Request, outcome: str) -> None:
    """Label this callback's outcome for the metrics (default: from the status code)."""
    request[OUTCOME_KEY] = outcome  # type: ignore[index]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help_, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def samples(self) -> Iterator[str]:
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.labels, labels)} {_number(value)}"


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help_: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.labels = name, help_, labels
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts, total = self.values.setdefault(labels, ([0] * len(self.buckets), [0.0]))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1  # cumulative, as Prometheus wants them
        total[0] += value

    def samples(self) -> Iterator[str]:
        for labels, (counts, total) in sorted(self.values.items()):
            for bound, count in zip(self.buckets, counts):
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.labels, labels, le)} {count}"
            yield f"{self.name}_sum{_labels(self.labels, labels)} {_number(total[0])}"
            yield f"{self.name}_count{_labels(self.labels, labels)} {counts[-1]}"


def family(name: str, help_: str, kind: str, samples: Iterable[str]) -> str:
    return "\n".join([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *samples])


def gauge(name: str, help_: str, values: dict[tuple[tuple[str, str], ...], float]) -> str:
    """A gauge read at scrape time: {((label, value), ...): number}."""
    return family(name, help_, "gauge", (
        f"{name}{_labels(tuple(k for k, _ in key), tuple(v for _, v in key))} {_number(v)}"
        for key, v in values.items()))


class Metrics:
    """safebot's own metrics; one per application (``metrics_key``)."""

    def __init__(self) -> None:
        self.callbacks = Counter("safebot_callbacks_total",
                                 "Callback POSTs by door (app, aibot) and outcome.",
                                 ("door", "outcome"))
        self.latency = Histogram("safebot_callback_duration_seconds",
                                 "Time to answer a callback POST, by door.", ("door",))
        self.pushes = Counter("safebot_pushes_total",
                              "Outbox pushes by channel and result (sent, failed, retried).",
                              ("channel", "result"))

    def callback(self, door: str, outcome: str, seconds: float) -> None:
        self.callbacks.inc(door, outcome)
        self.latency.observe(seconds, door)

    def push(self, channel: str, status: str) -> None:
        """``OutboxSender``'s hook: one recorded outcome (status sent | retry | failed)."""
        self.pushes.inc(channel, PUSH_RESULTS.get(status, status))

    def render(self, extra: Iterable[str] = ()) -> str:
        parts = [family(m.name, m.help, m.kind, m.samples())
                 for m in (self.callbacks, self.latency, self.pushes)]
        return "\n".join([*parts, *extra]) + "\n"


metrics_key = web.AppKey("metrics", Metrics)
