"""Building pushes for the outbox: WeCom message bodies within WeCom's limits."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.render import split_pages
from models import outbox


def enqueue_text(*, session: Session, key: str, to: str, text: str, now: datetime,
                 urgent: bool = False) -> int:
    """Queue ``text`` to ``to``; longer than WeCom's 2,048 bytes it goes as several messages
    (keys ``key``, ``key#2``, ...). Returns how many rows were new."""
    return sum(outbox.add(session=session, values=row)
               for row in text_rows(key=key, to=to, text=text, now=now, urgent=urgent))


def text_rows(*, key: str, to: str, text: str, now: datetime, urgent: bool = False,
              not_before: datetime | None = None) -> list[dict]:
    """The outbox rows of ``enqueue_text``, for ``outbox.enqueue_many`` (sweeps)."""
    pages = split_pages(text, reserve=0)
    return [outbox.row(key=key if i == 1 else f"{key}#{i}", recipient=to, msgtype="text",
                       payload={"content": page}, now=now, urgent=urgent,
                       not_before=not_before)
            for i, page in enumerate(pages, start=1)]
