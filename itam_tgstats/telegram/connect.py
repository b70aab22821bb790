"""Connecting to Telegram: set up or closed in one step, a failure said in one line."""

from __future__ import annotations

import logging
from typing import Any

from pyrogram import Client
from pyrogram import errors as tg

from itam_tgstats.errors import SessionError, TelegramError, rpc_error_id
from itam_tgstats.telegram.reach import connect_words, low_level, not_started, trace_of

log = logging.getLogger(__name__)


def _no_unknown_errors_file() -> None:
    """Pyrogram appends each error id it has no class for to `unknown_errors.txt` in the
    working directory, from the error's constructor: where it cannot write (a read-only
    directory, the image's), the OSError replaced Telegram's error, and one channel's
    refusal failed the whole pass (exit 1). It has no setting for the file: turned off
    here, once; the error's id is kept in our one-line message (`rpc_error_id`)."""
    init = tg.RPCError.__init__
    if getattr(init, "quiet", False):
        return

    def quiet_init(
        self: tg.RPCError,
        value: Any = None,
        rpc_name: str | None = None,
        is_unknown: bool = False,  # what turns the file on: never passed on
        is_signed: bool = False,
    ) -> None:
        init(self, value, rpc_name, False, is_signed)

    quiet_init.quiet = True  # type: ignore[attr-defined]
    tg.RPCError.__init__ = quiet_init


_no_unknown_errors_file()


async def connect_client(client: Client) -> None:
    """Connect, or raise our one-line error with the client closed: no retries left behind.

    Any failure to set up the connection counts: a middlebox answering garbage makes
    Pyrogram's handshake die with a KeyError in its TL decoder, a refusal ends as a
    ConnectionError, and so on; the line says which in words (`reach`), and a DEBUG line
    names the data center, the address and the low-level cause. A revoked session is a
    SessionError.
    """
    trace = trace_of(client)
    try:
        await client.connect()
    except (tg.Unauthorized, tg.AuthKeyDuplicated) as e:
        await close_client(client)
        raise SessionError(session_message(e)) from None
    except Exception as e:  # noqa: BLE001 - see the docstring
        await close_client(client)
        log.debug("cannot connect to Telegram's %s", low_level(e, trace))
        raise TelegramError(
            f"cannot reach Telegram: the connection could not be set up ({connect_words(e, trace)})"
        ) from None
    if client.session is None or not client.session.is_started.is_set():
        # Pyrogram returns from connect() and keeps retrying in the background; a pass (or
        # a person at a prompt) has no time for that.
        await close_client(client)
        log.debug("cannot connect to Telegram's %s", not_started(trace))
        raise TelegramError(
            "cannot reach Telegram: the connection could not be set up "
            f"({connect_words(TimeoutError(), trace)})"
        )
    if trace is not None:
        log.debug("connected to Telegram's %s", trace.where())


async def close_client(client: Client) -> None:
    """Disconnect, or close the storage a failed connect() left open; never raises."""
    try:
        if client.is_connected:
            await client.disconnect()
        elif getattr(client.storage, "conn", None) is not None:
            await client.storage.close()
    except Exception:  # cleanup must not hide the error being reported
        log.debug("closing the client failed", exc_info=True)


def session_message(error: tg.RPCError) -> str:
    """The exit-3 message."""
    name = rpc_error_id(error, with_code=False)
    return (
        f"the Telegram session is not authorized any more ({name}): "
        "mint a new one with `tgstats session` and put it in TG_SESSION_STRING"
    )
