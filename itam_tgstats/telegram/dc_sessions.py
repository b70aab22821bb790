"""Sessions on the account's other data centers for one pass: each opened once, all stopped
at its end.

The pass's downloads and admin statistics both reach other data centers through it (a
download call on its own makes one for that call). Pyrogram's `Client.get_session(dc_id)`
asks the home DC's help.getConfig for the address, creates a new auth key there, and
carries the login over with auth.exportAuthorization at home and auth.importAuthorization
there. It registers the session in `client.sessions[dc_id]` before it is ready; whoever
opened it stops it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyrogram import Client

log = logging.getLogger(__name__)


class DcSessions:
    """The sessions of one pass by data center, opened on first use and stopped by `close()`.

    The home DC is the client's own session. A session someone else opened (already in
    `client.sessions`) is used as it is and left for them to stop. Callers asking for the
    same DC at once share one opening (Pyrogram's own would open one each).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._locks: dict[int, asyncio.Lock] = {}
        self._opened: set[int] = set()  # DCs whose sessions this object opened, and stops

    async def __aenter__(self) -> DcSessions:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def get(self, dc_id: int | None = None) -> Any:
        """A started, logged-in session on `dc_id` (None: the home DC)."""
        if dc_id is None or dc_id == await self.client.storage.dc_id():
            return self.client.session
        async with self._locks.setdefault(dc_id, asyncio.Lock()):
            session = self.client.sessions.get(dc_id)
            if session is not None:
                return session
            self._opened.add(dc_id)
            log.debug("opening a session on DC%s", dc_id)
            try:
                return await self.client.get_session(dc_id)
            except BaseException:
                # Not left registered half-open for the next caller: it opens a new one.
                await self._stop(dc_id)
                raise

    async def close(self) -> None:
        """Stop every session this object opened (those of others stay as they are)."""
        for dc_id in sorted(self._opened):
            await self._stop(dc_id)

    async def _stop(self, dc_id: int) -> None:
        self._opened.discard(dc_id)
        session = self.client.sessions.pop(dc_id, None)
        if session is not None:
            await session.stop()
