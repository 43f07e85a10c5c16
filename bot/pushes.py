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
    pages = split_pages(text, reserve=0)
    added = 0
    for i, page in enumerate(pages, start=1):
        added += outbox.enqueue(session=session, key=key if i == 1 else f"{key}#{i}",
                                recipient=to, msgtype="text", payload={"content": page},
                                now=now, urgent=urgent)
    return added
