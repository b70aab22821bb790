"""Telegram: the Pyrogram client's lifecycle and the few raw calls (parsing is in `posts`).

Only `collect` and `session` import this module: it loads Pyrogram, which `show` and
`--help` never need. A pass costs `contacts.resolveUsername` once per account and channel
(the result is cached in Redis by the caller), then `channels.getFullChannel` and
`messages.getHistory`, sent together: one round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyrogram import Client, raw
from pyrogram import errors as tg

from itam_tgstats.config import Settings
from itam_tgstats.errors import (
    ChannelError,
    ChannelParseError,
    SessionError,
    TelegramError,
    describe,
    one_line,
)
from itam_tgstats.models import ChannelSnapshot, MediaFile, ResolvedChannel
from itam_tgstats.render import build_posts, build_stats, complete_posts, history_total
from itam_tgstats.telegram.reach import (
    connect_words,
    low_level,
    not_started,
    trace_of,
    traced,
)

log = logging.getLogger(__name__)

# getHistory returns at most 100 messages a call.
HISTORY_PAGE_MAX = 100

# Errors that mean a cached id/access hash no longer addresses the channel: resolve again.
STALE_PEER_ERRORS = (tg.ChannelInvalid, tg.PeerIdInvalid, tg.ChannelIdInvalid)
# What a cached peer may get when its access hash no longer works for this session.
CACHED_PEER_REFUSALS = (*STALE_PEER_ERRORS, tg.ChannelPrivate)
# Pyrogram retries a call that fails with a 5xx error or a dropped connection, a second
# apart; its default of 10 tries would spend most of a short TG_TIMEOUT on one call.
INVOKE_RETRIES = 3
# Requests in flight at once on the connection, whatever the number of channels.
MAX_IN_FLIGHT = 10

# ---------------------------------------------------------------------------
# The client.


@dataclass(frozen=True)
class FetchResult:
    """A pass's Telegram side: the snapshot and the channel as resolved (maybe anew)."""

    snapshot: ChannelSnapshot
    channel: ResolvedChannel
    resolved: bool


class TelegramSource:
    """A connected Pyrogram client that reads one channel with the fewest calls.

    Use as `async with TelegramSource(settings) as source: await source.fetch(...)`.
    `protocol_factory` replaces Pyrogram's TCP transport (the tests' stand-in Telegram).
    """

    def __init__(self, settings: Settings, *, protocol_factory: Any = None) -> None:
        self.settings = settings
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        # Every channel resolved by this source, by username, even if the pass fails later:
        # contacts.resolveUsername is the most flood-limited call, never to be repeated.
        self.resolved: dict[str, ResolvedChannel] = {}
        # The transport notes where it dialled and why it failed (`reach`).
        options: dict[str, Any] = {"protocol_factory": traced(protocol_factory)}
        self.client = Client(
            name="tgstats",
            api_id=settings.api_id,
            api_hash=settings.api_hash,
            session_string=settings.session_string,
            in_memory=True,
            no_updates=True,
            sleep_threshold=settings.flood_wait_max,
            fetch_replies=False,
            fetch_topics=False,
            fetch_stories=False,
            fetch_stickers=False,
            **options,
        )

    async def __aenter__(self) -> TelegramSource:
        await connect_client(self.client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect; safe to call twice."""
        if self.client.is_connected:
            await self.client.disconnect()

    async def invoke(self, query: Any) -> Any:
        """One raw call, with Telegram's errors turned into ours (FloodWait, session)."""
        try:
            async with self._in_flight:
                return await self.client.invoke(query, retries=INVOKE_RETRIES)
        except TimeoutError as e:
            # Pyrogram gave up after its retries (TG_TIMEOUT ends a pass by cancelling it,
            # which raises CancelledError here, not TimeoutError).
            raise TelegramError(
                f"Telegram kept failing ({one_line(str(e), 300)}): server errors or a broken "
                "connection; the next pass tries again"
            ) from None
        except tg.FloodWait as e:
            seconds = int(e.value or 0)
            raise TelegramError(
                f"Telegram asked to wait {seconds} s (FloodWait), "
                f"more than TG_FLOOD_WAIT_MAX={self.settings.flood_wait_max}",
                retry_at=time.time() + seconds,
            ) from None
        except (tg.Unauthorized, tg.AuthKeyDuplicated) as e:
            raise SessionError(session_message(e)) from None

    async def resolve(self, username: str) -> tuple[ResolvedChannel, Any]:
        """contacts.resolveUsername: the channel's id and access hash, and the raw Channel."""
        try:
            answer = await self.invoke(raw.functions.contacts.ResolveUsername(username=username))
        except (tg.UsernameNotOccupied, tg.UsernameInvalid) as e:
            raise ChannelError(username, f"channel @{username} does not exist ({e.ID})") from None
        except tg.RPCError as e:
            raise channel_error(username, e) from None
        peer = answer.peer
        channel = next(
            (
                c
                for c in answer.chats
                if isinstance(peer, raw.types.PeerChannel) and c.id == peer.channel_id
            ),
            None,
        )
        if isinstance(channel, raw.types.ChannelForbidden):
            raise ChannelError(
                username, f"channel @{username} is private or not readable by this account"
            )
        if not isinstance(channel, raw.types.Channel) or channel.megagroup:
            raise ChannelError(username, f"@{username} is not a channel")
        resolved = ResolvedChannel(id=channel.id, access_hash=channel.access_hash)
        self.resolved[username] = resolved
        return resolved, channel

    async def fetch(self, username: str, cached: ResolvedChannel | None) -> FetchResult:
        """A snapshot of the channel, using `cached` when given (resolving again once if stale)."""
        resolved = cached is None
        channel = cached if cached is not None else (await self.resolve(username))[0]
        try:
            snapshot = await self._snapshot(username, channel)
        except tg.RPCError as e:
            # A cached access hash may be stale, or bound to the session that received it
            # (then Telegram says CHANNEL_PRIVATE): resolve once more before giving up.
            if resolved or not isinstance(e, CACHED_PEER_REFUSALS):
                raise channel_error(username, e) from None
            log.info("cached peer of @%s rejected (%s); resolving again", username, e.ID)
            channel, resolved = (await self.resolve(username))[0], True
            try:
                snapshot = await self._snapshot(username, channel)
            except tg.RPCError as e2:
                raise channel_error(username, e2) from None
        return FetchResult(snapshot=snapshot, channel=channel, resolved=resolved)

    async def _snapshot(self, username: str, channel: ResolvedChannel) -> ChannelSnapshot:
        posts_wanted = self.settings.posts_count
        input_channel = raw.types.InputChannel(
            channel_id=channel.id, access_hash=channel.access_hash
        )
        peer = raw.types.InputPeerChannel(channel_id=channel.id, access_hash=channel.access_hash)
        # Enough for albums (up to 10 items) and service messages among the newest posts.
        limit = min(HISTORY_PAGE_MAX, posts_wanted * 4 + 10)
        full, history = await _gather(
            self.invoke(raw.functions.channels.GetFullChannel(channel=input_channel)),
            self.invoke(_history_query(peer, offset_id=0, limit=limit)),
        )
        messages = list(history.messages)
        # Forwarded posts name their senders from these (each page brings its own).
        chats, users = list(history.chats), list(history.users)
        exhausted = len(history.messages) < limit
        while not exhausted and complete_posts(messages, exhausted) < posts_wanted:
            oldest = min(m.id for m in history.messages)
            log.debug("page ended before %s posts; fetching below id %s", posts_wanted, oldest)
            history = await self.invoke(_history_query(peer, offset_id=oldest, limit=limit))
            messages.extend(history.messages)
            chats.extend(history.chats)
            users.extend(history.users)
            exhausted = len(history.messages) < limit

        if history_total(history) > 0 and not messages:
            # An answer that contradicts itself must not replace a good snapshot.
            raise ChannelError(
                username,
                f"Telegram reported {history_total(history)} messages in @{username} "
                "but returned none; keeping the last snapshot",
                backs_off=False,  # an odd answer, not the channel's fault: ask again next pass
            )
        raw_channel = next((c for c in full.chats if getattr(c, "id", None) == channel.id), None)
        if raw_channel is None:
            raise ChannelError(
                username,
                f"Telegram's answer for @{username} did not include the channel",
                backs_off=False,
            )
        try:
            stats = build_stats(
                raw_channel, full.full_chat, history_total(history), messages, time.time()
            )
            posts = build_posts(
                messages,
                posts_wanted,
                stats.username,
                channel.id,
                chats=chats,
                users=users,
                max_side=self.settings.media_max_side,
            )
        except Exception as e:  # a bug in parsing one channel fails that channel alone
            raise ChannelParseError(
                username, f"unexpected error while reading @{username}: {describe(e)}"
            ) from e
        return ChannelSnapshot(stats=stats, posts=posts)

    async def download(self, files: Sequence[MediaFile], *, timeout: float) -> dict[str, bytes]:
        """The files' bytes by key, within `timeout` seconds; a file that fails is left out
        (the next pass retries)."""
        if not files:
            return {}
        from itam_tgstats.telegram.downloads import download_files  # noqa: PLC0415

        return await download_files(self.client, files, timeout=timeout)


def _history_query(peer: Any, *, offset_id: int, limit: int) -> Any:
    return raw.functions.messages.GetHistory(
        peer=peer,
        offset_id=offset_id,
        offset_date=0,
        add_offset=0,
        limit=limit,
        max_id=0,
        min_id=0,
        hash=0,
    )


async def _gather(*calls: Any) -> list[Any]:
    """Run calls concurrently; raise the first failure once all have finished."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


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
    return (
        f"the Telegram session is not authorized any more ({error.ID}): "
        "mint a new one with `tgstats session` and put it in TG_SESSION_STRING"
    )


def channel_error(username: str, error: tg.RPCError) -> TelegramError:
    """A refusal as our one-line error: about this channel, or the whole pass.

    Telegram refusing a request about one channel (400 Bad Request, 403 Forbidden) concerns
    that channel only; the session (401, 406), FloodWait (420) and server errors (5xx)
    concern the account, and stop the pass (they are handled before this is called, or
    fall through to the last line).
    """
    if isinstance(error, tg.ChannelPrivate | tg.ChannelBanned | tg.ChannelPublicGroupNa):
        return ChannelError(
            username,
            f"channel @{username} is private or not readable by this account ({error.ID})",
        )
    if isinstance(error, STALE_PEER_ERRORS):
        return ChannelError(username, f"channel @{username} cannot be read ({error.ID})")
    if isinstance(error, tg.BadRequest | tg.Forbidden):
        return ChannelError(
            username, f"Telegram refused the request for @{username}: {error.CODE} {error.ID}"
        )
    return TelegramError(f"Telegram refused the request for @{username}: {error.CODE} {error.ID}")
