"""The bare ceiling for bench/callback_load.py: the callback door's crypto with nothing else.

An aiohttp app whose POST handler does what ``bot.app_door.AppDoor.receive`` does up to the
point where the service would touch its database — bounded body read, timestamp inside the
replay window, ``<Encrypt>`` cut out, constant-time signature check, decrypt + receive id,
``parse_callback`` — and then answers a fixed text through ``text_reply`` and
``encrypted_reply``: no database, no dispatcher, no templates. callback_load.py passes the
text the service actually answered (``--reply-file``), so both encrypt the same size. The same crypto code as the
service, run the same way (``web.run_app``, no access log).

    python -m bench.bare_server --config PATH --port PORT
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from aiohttp import web

from bot.callback_gate import MAX_BODY, read_limited
from bot.app_xml import BadXml, parse_callback, text_reply
from bot.config import load_config
from bot.crypto import CallbackCrypto, CryptoError, extract_encrypt

PATH = "/wecom/app/callback"
# About the size of the service's 帮助 reply for demo-liaison, so both encrypt a similar body.
REPLY = ("张联络（城东实验小学·成员、联络员），你可以使用：\n· 绑定 —— 用邀请码绑定你的身份\n"
         "· 帮助 —— 列出你可以使用的命令\n· 取消 —— 退出正在进行的操作\n\n"
         "正在进行的操作随时可回复「取消」退出。")


def make_app(crypto: CallbackCrypto, replay_window_s: int,
             reply: str = REPLY) -> web.Application:
    def fresh(timestamp: str) -> bool:
        if not timestamp.isdigit() or len(timestamp) > 12:
            return False
        return replay_window_s == 0 or abs(time.time() - int(timestamp)) <= replay_window_s

    async def receive(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        body = await read_limited(request, MAX_BODY)
        if body is None:
            return web.Response(status=413)
        q = request.query
        sig, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not sig or not fresh(ts):
            return web.Response(status=403)
        encrypt = extract_encrypt(body)
        if encrypt is None:
            return web.Response(status=400)
        if not crypto.check_signature(sig, ts, nonce, encrypt):
            return web.Response(status=403)
        try:
            msg = parse_callback(crypto.decrypt(encrypt))
        except (CryptoError, BadXml):
            return web.Response()
        plain = text_reply(to_user=msg.user_id, from_user=crypto.receive_id, content=reply)
        return web.Response(text=crypto.encrypted_reply(plain, nonce),
                            content_type="application/xml")

    app = web.Application(client_max_size=1024**2)
    app.router.add_post(PATH, receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the service's TOML config")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--reply-file", help="UTF-8 text to answer with (default: a fixed "
                                             "text about the size of the demo 帮助 reply)")
    args = parser.parse_args(argv)
    reply = Path(args.reply_file).read_text(encoding="utf-8") if args.reply_file else REPLY
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    app_cfg = cfg.wecom.app
    crypto = CallbackCrypto(app_cfg.token, app_cfg.encoding_aes_key, app_cfg.corp_id)
    web.run_app(make_app(crypto, cfg.wecom.replay_window_s, reply), host="127.0.0.1",
                port=args.port,
                access_log=None, shutdown_timeout=2, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
