"""The AI bot (智能机器人) door: group chats, where people @-mention the bot.

Two modes behind one core (``core.AibotCore``): a WebSocket long connection (``client``,
``ws_door``; one per bot, chosen by ``leader`` on PostgreSQL) and JSON callbacks
(``callback_door``). Both turn WeCom's JSON (``inbound``) into the same ``Incoming`` and render
the same ``Reply``; images arrive as short-lived encrypted URLs and are stored at once
(``media``). ``channel`` sends the outbox's "aibot" rows through the long connection.
"""
