"""Media downloads: one upload.getFile per file, concurrently, on the file's data center.

At most MAX_CONCURRENT_FILES files are fetched at once in one call, whatever their data
centers: a hundred posts hold well over a hundred files, and a pass should not ask Telegram
for all of them at the same moment.

Files on the account's home data center are fetched over the client's own connection. For
another data center the client needs a session there, which Pyrogram opens with
`Client.get_session(dc_id)`: help.getConfig (for the address), a new auth key,
auth.exportAuthorization at home and auth.importAuthorization there. It is opened once per
data center, before that data center's downloads start, and stopped when the downloads end.

Pyrogram's own `Client.get_file` is not used, for four reasons: it runs one transfer at a
time unless the client is built with a larger `max_concurrent_transmissions`; it opens a
separate media session even at home and, elsewhere, two sessions with two
export/import pairs; concurrent first calls for one data center each open their own; and
it sleeps through FloodWaits of up to 30 s and retries a failed call ten times. A pass
wants none of that: a file that does not come is simply missing until the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pyrogram import Client, raw
from pyrogram import errors as tg

from itam_tgstats.errors import describe, rpc_error_id
from itam_tgstats.models import MediaFile
from itam_tgstats.telegram.dc_sessions import DcSessions

log = logging.getLogger(__name__)

# upload.getFile returns at most 1 MiB a call; smaller files (all the contract asks for)
# come whole in one answer shorter than this.
CHUNK_SIZE = 1024 * 1024

# All the downloads of one call get this long, opening sessions included.
DOWNLOAD_TIMEOUT = 30.0

# A failed call is sent once more (a dropped connection that Pyrogram re-opens), not ten
# times as Pyrogram's default would.
CALL_ATTEMPTS = 2

# Files fetched at the same time in one download_files call (each file's chunks in turn).
MAX_CONCURRENT_FILES = 10


class UnexpectedAnswer(Exception):
    """upload.getFile answered with something other than the file's bytes."""


async def download_files(
    client: Client,
    files: Sequence[MediaFile],
    *,
    timeout: float = DOWNLOAD_TIMEOUT,
    sessions: DcSessions | None = None,
) -> dict[str, bytes]:
    """Download `files` concurrently: key → bytes for those that came, in at most `timeout` s.

    At most MAX_CONCURRENT_FILES are out at once; the others wait for a slot (and count as
    not answered if the deadline comes first).

    A file that fails (an expired file reference, a FloodWait, a timeout, any Telegram or
    network error) is logged in one line and left out; nothing is raised but cancellation.
    Sessions on other data centers come from `sessions` (the pass's, which stops them at its
    end); without it, those opened here are stopped before this returns.
    """
    own = sessions is None
    downloads = _Downloads(sessions or DcSessions(client), files)
    if not downloads.pending:
        return downloads.done
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(downloads.from_dc(dc_id) for dc_id in downloads.by_dc))
    except TimeoutError:
        for key in sorted(downloads.pending):
            log.warning("media %s not downloaded: no answer within %s s", key, timeout)
    finally:
        if own:
            await downloads.sessions.close()
    return downloads.done


class _Downloads:
    """One call's downloads: what is wanted per DC, what came, what is still out."""

    def __init__(self, sessions: DcSessions, files: Sequence[MediaFile]) -> None:
        self.sessions = sessions
        self.by_dc: dict[int, list[MediaFile]] = {}
        for file in {f.key: f for f in files}.values():  # one download per key
            self.by_dc.setdefault(file.dc_id, []).append(file)
        self.pending = {f.key for f in files}
        self.done: dict[str, bytes] = {}
        self.slots = asyncio.Semaphore(MAX_CONCURRENT_FILES)

    async def from_dc(self, dc_id: int) -> None:
        """A session on `dc_id` first (opened once), then its files, as slots free up."""
        files = self.by_dc[dc_id]
        try:
            session = await self.sessions.get(dc_id)
        except Exception as e:  # noqa: BLE001 - any failure only costs this DC's files
            log.warning(
                "media on DC%s not downloaded (%d files): cannot open a session there: %s",
                dc_id,
                len(files),
                _describe(e),
            )
            self.pending.difference_update(f.key for f in files)
            return
        await asyncio.gather(*(self.one(session, f) for f in files))

    async def one(self, session: Any, file: MediaFile) -> None:
        try:
            async with self.slots:
                self.done[file.key] = await _fetch(session, file)
        except tg.FileReferenceExpired:
            log.info("media %s not downloaded: file reference expired", file.key)
        except Exception as e:  # noqa: BLE001 - a missing file never fails the pass
            log.warning("media %s not downloaded: %s", file.key, _describe(e))
        # Not in `finally`: a download cancelled by the deadline is still pending, to report.
        self.pending.discard(file.key)


async def _fetch(session: Any, file: MediaFile) -> bytes:
    location = _location(file)
    chunks: list[bytes] = []
    offset = 0
    while True:
        answer = await session.invoke(
            # Without updates: a download connection must not start receiving them.
            raw.functions.InvokeWithoutUpdates(
                query=raw.functions.upload.GetFile(
                    location=location, offset=offset, limit=CHUNK_SIZE
                )
            ),
            retries=CALL_ATTEMPTS,
            sleep_threshold=0,  # a FloodWait costs this file, never the pass's time
        )
        if not isinstance(answer, raw.types.upload.File):
            raise UnexpectedAnswer(f"upload.getFile answered {type(answer).__name__}")
        chunks.append(answer.bytes)
        if len(answer.bytes) < CHUNK_SIZE:
            return b"".join(chunks)
        offset += CHUNK_SIZE


def _location(file: MediaFile) -> Any:
    if file.kind == "photo":
        return raw.types.InputPhotoFileLocation(
            id=file.id,
            access_hash=file.access_hash,
            file_reference=file.file_reference,
            thumb_size=file.size_type,
        )
    return raw.types.InputDocumentFileLocation(
        id=file.id,
        access_hash=file.access_hash,
        file_reference=file.file_reference,
        thumb_size=file.size_type,
    )


def _describe(error: BaseException) -> str:
    """An error in one short line: Telegram's error id, or the exception's text."""
    if isinstance(error, tg.FloodWait):
        return f"FloodWait of {error.value} s"
    if isinstance(error, tg.RPCError):
        return rpc_error_id(error)
    return describe(error)
