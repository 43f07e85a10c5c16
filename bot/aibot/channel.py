"""Pushes into group chats: the outbox's "aibot" channel and a unit's groups.

Only the long connection can push (``aibot_send_msg`` to a chat id, or to a userid for a 1:1
chat); in callback mode, or without the AI bot, a unit's group pushes go to the group webhook
named after the unit's code in ``[wecom.webhooks]``, if there is one. An instance that does not
hold the connection (another instance does) leaves the row for a later attempt.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.aibot import frames
from bot.aibot.client import AibotClient, AibotError, AibotUnavailable
from bot.render import split_pages
from bot.wecom_api import WeComError, WeComUnavailable
from models import group, outbox
from models.org import Unit

MARKDOWN_LIMIT = 20480          # bytes, AI bot markdown
WEBHOOK_MARKDOWN_LIMIT = 4096   # bytes, group webhook markdown
CONNECT_WAIT_S = 3.0
NO_PUSH = 48002  # "API forbidden": a callback-mode bot cannot push


class AibotChannel:
    """The OutboxSender's sender for channel "aibot" (recipient: chat id or userid)."""

    def __init__(self, client: AibotClient | None,
                 leading: asyncio.Event | None = None) -> None:
        self.client, self.leading = client, leading

    async def __call__(self, row: outbox.Claimed) -> dict[str, Any]:
        if self.client is None:
            raise WeComError(NO_PUSH, "the AI bot has no long connection here", frames.SEND_MSG)
        if self.leading is not None and not self.leading.is_set():
            raise WeComUnavailable("another instance holds the AI bot's connection")
        try:
            await asyncio.wait_for(self.client.connected.wait(), CONNECT_WAIT_S)
            ack = await self.client.request(frames.SEND_MSG, frames.send_msg(
                row.recipient, row.msgtype, row.payload))
        except asyncio.TimeoutError:
            raise WeComUnavailable("the AI bot's long connection is not up here") from None
        except AibotError as exc:
            raise WeComError(exc.errcode, exc.errmsg, frames.SEND_MSG) from None
        except AibotUnavailable as exc:
            raise WeComUnavailable(str(exc)) from None
        return {"req_id": ack.req_id}


def enqueue_markdown(*, session: Session, key: str, to: str, text: str, now: datetime,
                     urgent: bool = False, channel: str = "aibot") -> int:
    """Queue ``text`` to a chat (or a userid) through the AI bot, or to a webhook; split if it
    is too long for one message."""
    limit = MARKDOWN_LIMIT if channel == "aibot" else WEBHOOK_MARKDOWN_LIMIT
    pages = split_pages(text, limit=limit, reserve=0)
    return sum(outbox.enqueue(session=session, key=key if i == 1 else f"{key}#{i}",
                              recipient=to, msgtype="markdown", payload={"content": page},
                              now=now, channel=channel, urgent=urgent)
               for i, page in enumerate(pages, start=1))


class GroupPushes:
    """``services["group_pushes"]``: a text to every group chat of a unit (reminders)."""

    def __init__(self, *, aibot_push: bool, webhooks: dict[str, str]) -> None:
        self.aibot_push, self.webhooks = aibot_push, webhooks

    def enqueue(self, *, session: Session, key: str, unit_id: int, text: str, now: datetime,
                urgent: bool = False) -> int:
        """Rows added (0 when the unit has no group to reach)."""
        chats = group.chats_of_unit(session=session, unit_id=unit_id)
        if self.aibot_push and chats:
            return sum(enqueue_markdown(session=session, key=f"{key}:{chat}", to=chat,
                                        text=text, now=now, urgent=urgent) for chat in chats)
        unit = session.get(Unit, unit_id)
        if unit is None or unit.code not in self.webhooks:
            return 0
        return enqueue_markdown(session=session, key=f"{key}:webhook:{unit.code}",
                                to=unit.code, text=text, now=now, urgent=urgent,
                                channel="webhook")
