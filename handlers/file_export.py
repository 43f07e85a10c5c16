"""Exports a leader asks for by message: answer at once, make the file later, push it.

Slow work answers at once and pushes the result later (DESIGN.md). ``launch`` starts a
background task (kept in ``ctx.services["background"]``, awaited at shutdown) that runs
``make_file`` in a worker thread — off the event loop, and on a database connection of its
own so a big export never holds the thread the callbacks need — then queues the file and a
short summary (or an apology) in the outbox and wakes it. One export per kind and person at a
time; the outbox keys come from the asking message, so a WeCom retry queues nothing twice.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlmodel import Session

from bot.context import Ctx
from handlers.hazard_common import Notices
from models import outbox

log = logging.getLogger(__name__)
MakeFile = Callable[[], dict[str, Any]]  # -> {"path": relative to data_dir, ...summary}


@dataclass(frozen=True)
class Export:
    kind: str                 # "ledger", "monthly-export": one at a time per person and kind
    key: str                  # the outbox keys' stem
    userid: str
    now: datetime
    filename: str             # what the recipient sees
    done_template: str
    failed_template: str
    data: dict[str, Any] = field(default_factory=dict)  # for both templates


def launch(ctx: Ctx, export: Export, make_file: MakeFile) -> bool:
    """Start the export; False (and nothing started) if this person's last one still runs."""
    tasks: set[asyncio.Task[None]] = ctx.services["background"]
    name = f"{export.kind}:{export.userid}"
    if any(t.get_name() == name for t in tasks):
        return False
    task = asyncio.create_task(_run(export, make_file, ctx.db, ctx.services), name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return True


async def _run(export: Export, make_file: MakeFile, db: Any, services: dict[str, Any]) -> None:
    result: dict[str, Any] | None = None
    try:
        result = await asyncio.to_thread(make_file)
    except Exception:
        log.exception("%s export %s failed", export.kind, export.key)
    try:
        await db.run(_enqueue, export=export, result=result, notices=services["notices"])
    except Exception:
        log.exception("could not queue %s export %s", export.kind, export.key)
        return
    services["wake"]()


def _enqueue(*, session: Session, export: Export, result: dict[str, Any] | None,
             notices: Notices) -> None:
    data = {**export.data, "filename": export.filename}
    if result is None:
        notices.text(session=session, template=export.failed_template,
                     key=f"{export.key}:failed", to=[export.userid], now=export.now, **data)
        return
    outbox.enqueue(session=session, key=f"{export.key}:file", recipient=export.userid,
                   msgtype="file", payload={"path": result["path"], "filename": export.filename},
                   now=export.now)
    notices.text(session=session, template=export.done_template, key=f"{export.key}:text",
                 to=[export.userid], now=export.now, **data, **result)
