"""WeCom callback crypto (WXBizMsgCrypt) in the order that keeps unauthenticated work cheap.

wechatpy's ``WeChatCrypto.decrypt_message`` parses the untrusted outer XML before it checks the
signature and compares with ``!=``. Here the ``<Encrypt>`` value is cut out with a bounded
regular expression, the signature is compared in constant time, and only then does wechatpy's
``PrpCrypto`` (AES-256-CBC, PKCS#7 to 32 bytes) decrypt it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time

from wechatpy.enterprise.crypto import PrpCrypto

# Base64 only: the pattern cannot backtrack badly on a hostile 64 KiB body.
_ENCRYPT_RE = re.compile(rb"<Encrypt>\s*(?:<!\[CDATA\[([A-Za-z0-9+/=]{1,65536})\]\]>|([A-Za-z0-9+/=]{1,65536}))\s*</Encrypt>")


class CryptoError(Exception):
    """The message is not authentic or cannot be decrypted."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = sorted([token, timestamp, nonce, encrypt])
    return hashlib.sha1("".join(parts).encode()).hexdigest()


def extract_encrypt(envelope: bytes) -> str | None:
    """The ``<Encrypt>`` value of a callback envelope, without parsing the XML."""
    match = _ENCRYPT_RE.search(envelope)
    if not match:
        return None
    return (match.group(1) or match.group(2)).decode("ascii")


class CallbackCrypto:
    """Signs, verifies, encrypts and decrypts for one callback endpoint.

    ``receive_id`` is the corp id for a self-built app and ``""`` for an AI bot.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=")
        except binascii.Error as exc:
            raise ValueError("encoding_aes_key is not base64") from exc
        if len(key) != 32:
            raise ValueError("encoding_aes_key must decode to 32 bytes")
        self.token = token
        self.receive_id = receive_id
        self._prp = PrpCrypto(key)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str,
                        encrypt: str) -> bool:
        expected = signature(self.token, timestamp, nonce, encrypt)
        return hmac.compare_digest(expected.encode(), msg_signature.encode("utf-8", "replace"))

    def decrypt(self, encrypt: str) -> str:
        """Decrypt and check the receive id; any malformed input raises ``CryptoError``."""
        try:
            text = self._prp.decrypt(encrypt, self.receive_id)
        except (ValueError, struct.error, IndexError, TypeError, binascii.Error) as exc:
            # UnicodeDecodeError (invalid UTF-8 after decryption) is a ValueError.
            raise CryptoError(type(exc).__name__) from None
        except Exception as exc:  # wechatpy raises InvalidCorpIdException on a wrong receive id
            raise CryptoError(type(exc).__name__) from None
        return text

    def encrypt(self, plaintext: str) -> str:
        return self._prp.encrypt(plaintext, self.receive_id).decode("ascii")

    def encrypted_reply(self, plaintext: str, nonce: str, timestamp: str | None = None) -> str:
        """The passive-reply envelope WeCom expects."""
        timestamp = timestamp or str(int(time.time()))
        encrypt = self.encrypt(plaintext)
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")

    def sign_callback(self, plaintext: str, *, timestamp: str | None = None,
                      nonce: str | None = None, to_user: str = "",
                      agent_id: int = 1) -> tuple[dict[str, str], str]:
        """Encrypt a callback as WeCom sends it: (query parameters, XML envelope).

        Used by the sandbox and the tests; kept here so both use the one implementation.
        """
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt = self.encrypt(plaintext)
        query = {"msg_signature": signature(self.token, timestamp, nonce, encrypt),
                 "timestamp": timestamp, "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{to_user or self.receive_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{agent_id}]]></AgentID></xml>")
        return query, body

    def open_reply(self, envelope: str) -> str:
        """Verify and decrypt a passive reply (what WeCom does with our answer)."""
        encrypt = extract_encrypt(envelope.encode())
        sig = re.search(r"<MsgSignature><!\[CDATA\[([0-9a-f]+)\]\]>", envelope)
        ts = re.search(r"<TimeStamp>(\d+)</TimeStamp>", envelope)
        nonce = re.search(r"<Nonce><!\[CDATA\[([^\]]*)\]\]>", envelope)
        if not (encrypt and sig and ts and nonce):
            raise CryptoError("malformed reply envelope")
        if not self.check_signature(sig.group(1), ts.group(1), nonce.group(1), encrypt):
            raise CryptoError("bad reply signature")
        return self.decrypt(encrypt)
