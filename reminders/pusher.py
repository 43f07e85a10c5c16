"""The three ways a sweep reaches people:

- ``alert``: at once, day or night (major hazards, missed duty, incidents);
- ``timely``: at once, but held until the quiet hours end (a shift starting soon);
- ``routine``: into the person's daily digest (overdue and due-soon rectifications, deadlines),
  unless they snoozed that subject;
- ``group``: to the unit's bound group chats (AI bot) or its webhook, when it has one.

All of them write rows in the caller's transaction, with deterministic keys: a sweep run twice,
late, or on two instances sends nothing twice.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlmodel import Session

from bot.pushes import enqueue_text
from bot.render import Renderer
from models import digest, outbox
from models.digest import DigestItem
from models.outbox import OutboxMessage
from reminders.quiet import release_at

TAKEN_CHUNK = 1000


class Pusher:
    def __init__(self, *, renderer: Renderer, tz: ZoneInfo, quiet_hours: str,
                 groups: Any = None) -> None:
        self.renderer, self.tz, self.quiet_hours = renderer, tz, quiet_hours
        self.groups = groups  # bot.aibot.channel.GroupPushes, when the AI bot or webhooks exist

    def alert(self, *, session: Session, key: str, to: list[str], template: str, now: datetime,
              **data: Any) -> int:
        text = self.renderer.render(template, **data)
        return sum(enqueue_text(session=session, key=f"{key}:{u}", to=u, text=text, now=now,
                                urgent=True) for u in to)

    def timely(self, *, session: Session, key: str, to: list[str], template: str,
               now: datetime, **data: Any) -> int:
        text = self.renderer.render(template, **data)
        hold = release_at(now, self.tz, self.quiet_hours)
        added = 0
        for user in to:
            added += outbox.enqueue(session=session, key=f"{key}:{user}", recipient=user,
                                    msgtype="text", payload={"content": text}, now=now,
                                    not_before=hold)
        return added

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

    def routine(self, *, session: Session, key: str, to: list[str], template: str,
                now: datetime, today: date, subject: str = "", **data: Any) -> int:
        text = self.renderer.render(template, **data)
        added = 0
        for user in to:
            if subject and digest.snoozed(session=session, userid=user, subject=subject,
                                          today=today):
                continue
            added += digest.add_item(session=session, key=f"{key}:{user}", userid=user,
                                     subject=subject, text=text, now=now)
        return added

    def group(self, *, session: Session, key: str, unit_id: int, template: str, now: datetime,
              **data: Any) -> int:
        """The unit's group chats hear it too (nothing when the unit has none)."""
        if self.groups is None:
            return 0
        return self.groups.enqueue(session=session, key=key, unit_id=unit_id,
                                   text=self.renderer.render(template, **data), now=now)
