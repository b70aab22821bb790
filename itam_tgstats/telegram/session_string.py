"""Session strings: Pyrogram's own, and the Telethon StringSession the old worker minted.

Decoding is plain base64 and struct work, so `config` can validate a string without
importing Pyrogram. A Telethon string carries the data centre and the auth key but no
user id; it converts to a Pyrogram string whose user id is 0 (unknown).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field

# Pyrogram's formats (pyrogram/storage/storage.py): dc_id, api_id, test_mode, auth_key,
# user_id, is_bot; and the two older ones without api_id.
PYROGRAM_FORMAT = ">BI?256sQ?"
PYROGRAM_OLD_FORMAT = ">B?256sI?"
PYROGRAM_OLD_FORMAT_64 = ">B?256sQ?"
# Telethon's StringSession: "1" + urlsafe base64 of dc_id, IPv4 or IPv6 address, port, auth key.
TELETHON_VERSION = "1"
TELETHON_IPV4_FORMAT = ">B4sH256s"
TELETHON_IPV6_FORMAT = ">B16sH256s"


class SessionStringError(ValueError):
    """The text is not a Pyrogram or Telethon session string."""


@dataclass(frozen=True)
class SessionData:
    """What a session string holds. `user_id` is 0 when the string does not say."""

    dc_id: int
    auth_key: bytes = field(repr=False)
    user_id: int = 0
    api_id: int = 0
    test_mode: bool = False
    is_bot: bool = False
    source: str = "pyrogram"

    @property
    def auth_key_id(self) -> str:
        """The auth key's public id (last 8 bytes of its SHA-1, as MTProto sends it), in hex."""
        return hashlib.sha1(self.auth_key).digest()[-8:].hex()  # noqa: S324 - MTProto's definition

    @property
    def account_key(self) -> str:
        """What identifies the account: its user id, or the auth key id when that is unknown."""
        return str(self.user_id) if self.user_id else f"key-{self.auth_key_id}"

    def to_pyrogram(self, api_id: int) -> str:
        """Encode as a current Pyrogram session string."""
        packed = struct.pack(
            PYROGRAM_FORMAT,
            self.dc_id,
            self.api_id or api_id,
            self.test_mode,
            self.auth_key,
            self.user_id,
            self.is_bot,
        )
        return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise SessionStringError("not valid base64") from e


def parse_session_string(text: str) -> SessionData:
    """Decode a Pyrogram or Telethon session string (surrounding whitespace ignored)."""
    text = text.strip()
    if not text:
        raise SessionStringError("empty")
    if text.startswith(TELETHON_VERSION) and len(text) in (353, 369):
        return _parse_telethon(text[1:])
    raw = _b64decode(text)
    if len(raw) == struct.calcsize(PYROGRAM_FORMAT):
        dc_id, api_id, test_mode, auth_key, user_id, is_bot = struct.unpack(PYROGRAM_FORMAT, raw)
    elif len(raw) in (
        struct.calcsize(PYROGRAM_OLD_FORMAT),
        struct.calcsize(PYROGRAM_OLD_FORMAT_64),
    ):
        fmt = (
            PYROGRAM_OLD_FORMAT
            if len(raw) == struct.calcsize(PYROGRAM_OLD_FORMAT)
            else PYROGRAM_OLD_FORMAT_64
        )
        dc_id, test_mode, auth_key, user_id, is_bot = struct.unpack(fmt, raw)
        api_id = 0
    else:
        raise SessionStringError("wrong length for a Pyrogram or Telethon session string")
    _check_dc(dc_id)
    return SessionData(
        dc_id=dc_id,
        auth_key=auth_key,
        user_id=user_id,
        api_id=api_id,
        test_mode=test_mode,
        is_bot=is_bot,
    )


def _parse_telethon(body: str) -> SessionData:
    raw = _b64decode(body)
    fmt = TELETHON_IPV4_FORMAT if len(raw) == struct.calcsize(TELETHON_IPV4_FORMAT) else None
    if len(raw) == struct.calcsize(TELETHON_IPV6_FORMAT):
        fmt = TELETHON_IPV6_FORMAT
    if fmt is None:
        raise SessionStringError("wrong length for a Telethon session string")
    dc_id, _ip, _port, auth_key = struct.unpack(fmt, raw)
    _check_dc(dc_id)
    return SessionData(dc_id=dc_id, auth_key=auth_key, source="telethon")


def _check_dc(dc_id: int) -> None:
    if not 1 <= dc_id <= 5:
        raise SessionStringError(f"unknown data centre {dc_id}")
