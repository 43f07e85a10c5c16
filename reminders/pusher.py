"""The three ways a sweep reaches people:

- ``alert``: at once, day or night (major hazards, missed duty, incidents);
- ``timely``: at once, but held until the quiet hours end (a shift starting soon);
- ``routine``: into the person's daily digest (overdue and due-soon rectifications, deadlines),
  unless they snoozed that subject;
- ``group``: to the unit's bound group chats (AI bot) or its webhook, when it has one.

All of them write rows in the caller's transaction, with deterministic keys: a sweep run twice,
late, or on two instances sends nothing twice.

A sweep with many pushes hands them to ``push_all`` at once: each distinct text is rendered
once, and the rows go in as multi-row inserts (a first deployment's catch-up queues tens of
thousands; one statement each took most of the sweep, bench/growth.py). Pushes with a
``Grouping`` that a recipient gets ``at`` or more of in one pass go as one message listing
them (the bureau hears of thousands of overdue hazards the first morning, not in thousands of
messages); each grouped push keeps its key in an outbox row marked ``merged``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlmodel import Session

from bot.pushes import text_rows
from bot.render import Renderer
from models import digest, outbox
from models.digest import DigestItem
from models.outbox import OutboxMessage
from reminders.quiet import release_at

TAKEN_CHUNK = 1000


@dataclass(frozen=True)
class Grouping:
    """Pushes of one kind that one recipient gets many of in one pass: one message instead.

    ``template`` renders the message from ``lines`` (the first ``listed``), ``total`` and
    ``urgent``; ``line`` renders one push's data as a line of it."""
    name: str
    template: str
    line: str
    at: int = 3
    listed: int = 20


@dataclass(frozen=True)
class Push:
    how: str  # routine | timely | alert
    key: str  # the rows' keys are ``key:userid``
    to: list[str]
    template: str
    data: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # routine: what a snooze holds back (a hazard number)
    grouping: Grouping | None = None


class Pusher:
    def __init__(self, *, renderer: Renderer, tz: ZoneInfo, quiet_hours: str,
                 groups: Any = None) -> None:
        self.renderer, self.tz, self.quiet_hours = renderer, tz, quiet_hours
        self.groups = groups  # bot.aibot.channel.GroupPushes, when the AI bot or webhooks exist

    def alert(self, *, session: Session, key: str, to: list[str], template: str, now: datetime,
              **data: Any) -> int:
        return self.push_all(session=session, now=now,
                             pushes=[Push("alert", key, to, template, data)])

    def timely(self, *, session: Session, key: str, to: list[str], template: str,
               now: datetime, **data: Any) -> int:
        return self.push_all(session=session, now=now,
                             pushes=[Push("timely", key, to, template, data)])

    def routine(self, *, session: Session, key: str, to: list[str], template: str,
                now: datetime, today: date, subject: str = "", **data: Any) -> int:
        return self.push_all(session=session, now=now, today=today,
                             pushes=[Push("routine", key, to, template, data, subject)])

    def push_all(self, *, session: Session, pushes: Iterable[Push], now: datetime,
                 today: date | None = None) -> int:
        """Queue every push to every one of its recipients; how many rows were new."""
        pushes = list(pushes)
        today = today or now.astimezone(self.tz).date()
        hold = release_at(now, self.tz, self.quiet_hours)
        texts = _Texts(self.renderer)
        many = Counter((p.grouping, p.how, u) for p in pushes if p.grouping for u in p.to)
        items: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        grouped: dict[tuple[Grouping, str, str], list[Push]] = {}
        for push in pushes:
            for user in push.to:
                if push.grouping and many[(push.grouping, push.how, user)] >= push.grouping.at:
                    grouped.setdefault((push.grouping, push.how, user), []).append(push)
                elif push.how == "routine":
                    if not (push.subject and digest.snoozed(
                            session=session, userid=user, subject=push.subject, today=today)):
                        items.append(digest.item_row(
                            key=f"{push.key}:{user}", userid=user, subject=push.subject,
                            text=texts.render(push.template, push.data), now=now))
                else:
                    rows += text_rows(key=f"{push.key}:{user}", to=user,
                                      text=texts.render(push.template, push.data), now=now,
                                      urgent=push.how == "alert",
                                      not_before=hold if push.how == "timely" else None)
        added = len(digest.add_items(session=session, rows=items))
        if grouped:
            rows += self._grouped(session, grouped, texts, now, hold)
        return added + len(outbox.enqueue_many(session=session, rows=rows))

    def _grouped(self, session: Session, grouped: dict[tuple[Grouping, str, str], list[Push]],
                 texts: "_Texts", now: datetime, hold: datetime | None) -> list[dict[str, Any]]:
        """Mark each grouped push ``merged`` under its own key, then one message per
        recipient lists those that were new (none: nothing, another pass had them)."""
        lines = {(p.key, u): texts.render(g.line, p.data)
                 for (g, _, u), ps in grouped.items() for p in ps}
        marked = outbox.enqueue_many(session=session, rows=[
            outbox.row(key=f"{p.key}:{u}", recipient=u, msgtype="text",
                       payload={"content": lines[(p.key, u)]}, now=now, urgent=how == "alert",
                       status=outbox.MERGED)
            for (g, how, u), ps in grouped.items() for p in ps])
        rows: list[dict[str, Any]] = []
        for (g, how, user), ps in grouped.items():
            fresh = [p for p in ps if f"{p.key}:{user}" in marked]
            if not fresh:
                continue
            text = self.renderer.render(g.template, total=len(fresh), urgent=how == "alert",
                                        lines=[lines[(p.key, user)] for p in fresh[:g.listed]])
            rows += text_rows(key=f"{g.name}:{fresh[0].key}:{user}", to=user, text=text, now=now,
                              urgent=how == "alert", not_before=hold if how == "timely" else None)
        return rows

    def taken(self, *, session: Session, digest: list[str] = (), outbox_: list[str] = ()
              ) -> set[str]:
        """Which of these full keys (``key:userid``) are queued already, as digest items or
        outbox rows: a sweep that knows its keys up front skips those before it renders
        anything (one query per thousand keys instead of one insert per push)."""
        found: set[str] = set()
        for column, keys in ((DigestItem.key, list(dict.fromkeys(digest))),
                             (OutboxMessage.key, list(dict.fromkeys(outbox_)))):
            for i in range(0, len(keys), TAKEN_CHUNK):
                # the keys written into the SQL: as a thousand bound parameters the driver
                # prepares the statement and PostgreSQL may settle on a generic plan that
                # compares every row with every key (seconds right after a big insert)
                chunk = bindparam(None, keys[i:i + TAKEN_CHUNK], type_=column.type,
                                  expanding=True, literal_execute=True)
                found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    def group(self, *, session: Session, key: str, unit_id: int, template: str, now: datetime,
              **data: Any) -> int:
        """The unit's group chats hear it too (nothing when the unit has none)."""
        if self.groups is None:
            return 0
        return self.groups.enqueue(session=session, key=key, unit_id=unit_id,
                                   text=self.renderer.render(template, **data), now=now)


class _Texts:
    """Each distinct template and data rendered once (a campaign's reminder is the same text
    for every unit that owes it)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.seen: dict[Any, str] = {}

    def render(self, template: str, data: dict[str, Any]) -> str:
        try:
            key = (template, _freeze(data))
            hash(key)
        except TypeError:  # something unhashable among the data: no memo
            return self.renderer.render(template, **data)
        if key not in self.seen:
            self.seen[key] = self.renderer.render(template, **data)
        return self.seen[key]


def _freeze(value: Any) -> Any:
    """``value`` as something hashable that is equal when the data is."""
    if isinstance(value, dict):
        return (dict, tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_freeze(v) for v in value))
    return (type(value), value)  # True and 1 are equal, but do not render alike
