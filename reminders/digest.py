"""The morning digest: each person's routine reminders in one message, oldest first."""
from __future__ import annotations

from datetime import time

from bot.config import parse_hhmm
from bot.pushes import text_rows
from models import digest, outbox
from reminders.sweep import SweepCtx

MARK_CHUNK = 1000


def sweep(ctx: SweepCtx) -> int:
    if ctx.local_now.time() < time(*parse_hhmm(ctx.settings.digest_time)) or not ctx.daytime:
        return 0
    pending = digest.pending(session=ctx.session)
    rows = []
    for userid, items in pending.items():
        text = ctx.pusher.renderer.render("reminders/digest.txt.j2", today=ctx.today,
                                          items=[i.text for i in items])
        rows += text_rows(key=_key(ctx, userid), to=userid, text=text, now=ctx.now)
    # One digest a day: whoever inserts today's row marks the items; an item that comes
    # after today's digest waits for tomorrow's.
    new = outbox.enqueue_many(session=ctx.session, rows=rows)
    sent = [userid for userid in pending if _key(ctx, userid) in new]
    marked = [i.id for userid in sent for i in pending[userid]]
    for i in range(0, len(marked), MARK_CHUNK):  # a few statements, not one per person
        digest.mark_sent(session=ctx.session, ids=marked[i:i + MARK_CHUNK], now=ctx.now)
    return len(sent)


def _key(ctx: SweepCtx, userid: str) -> str:
    return f"digest:{userid}:{ctx.today}"
