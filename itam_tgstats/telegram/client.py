"""Telegram: the Pyrogram client's lifecycle and the few raw calls (parsing is in `posts`).

Only `collect` and `session` import this module: it loads Pyrogram, which `show` and
`--help` never need. A pass costs `contacts.resolveUsername` once per account and channel
(the result is cached in Redis by the caller), then `channels.getFullChannel` and
`messages.getHistory`, sent together: one round trip. When a channel's admin statistics are
due and getFullChannel says this account may view them, their calls follow (stats.py).
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
    rpc_error_id,
)
from itam_tgstats.models import AdminStatsRead, ChannelSnapshot, MediaFile, ResolvedChannel
from itam_tgstats.render import build_posts, build_stats, complete_posts, history_total
from itam_tgstats.render.posts import group_posts, post_numbers
from itam_tgstats.telegram.connect import connect_client, session_message
from itam_tgstats.telegram.dc_sessions import DcSessions
from itam_tgstats.telegram.reach import (
    traced,
)
from itam_tgstats.telegram.stats import STATS_TIMEOUT, read_admin_stats

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
    admin_stats: AdminStatsRead | None = None


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
        # Sessions on other data centers (admin statistics), one per DC, for this source's life.
        self.dc_sessions = DcSessions(self.client)
        # Username → the pass's time, for the channels whose admin statistics are due (set by
        # the pass): read then, if getFullChannel says this account may view them.
        self.admin_stats_at: dict[str, float] = {}

    async def __aenter__(self) -> TelegramSource:
        await connect_client(self.client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect; safe to call twice."""
        try:
            await self.dc_sessions.close()
        finally:
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

    async def fetch(
        self, username: str, cached: ResolvedChannel | None, messages: int = 0
    ) -> FetchResult:
        """A snapshot of the channel, using `cached` when given (resolving again once if stale);
        with its admin statistics when they are due (`admin_stats_at`) and this account may
        view them.

        `messages`: how many of the newest messages the first getHistory page should hold
        at least (the young posts the last pass followed; at most a page is asked for).
        """
        resolved = cached is None
        channel = cached if cached is not None else (await self.resolve(username))[0]
        try:
            snapshot, full_chat = await self._snapshot(username, channel, messages)
        except tg.RPCError as e:
            # A cached access hash may be stale, or bound to the session that received it
            # (then Telegram says CHANNEL_PRIVATE): resolve once more before giving up.
            if resolved or not isinstance(e, CACHED_PEER_REFUSALS):
                raise channel_error(username, e) from None
            log.info("cached peer of @%s rejected (%s); resolving again", username, e.ID)
            channel, resolved = (await self.resolve(username))[0], True
            try:
                snapshot, full_chat = await self._snapshot(username, channel, messages)
            except tg.RPCError as e2:
                raise channel_error(username, e2) from None
        admin_stats = await read_admin_stats(
            self.dc_sessions,
            username,
            channel,
            full_chat,
            asked_at=self.admin_stats_at.get(username),
            # Within a short TG_TIMEOUT too, leaving the pass most of it.
            timeout=min(STATS_TIMEOUT, self.settings.timeout / 4),
        )
        return FetchResult(snapshot, channel, resolved, admin_stats)

    async def _snapshot(
        self, username: str, channel: ResolvedChannel, young: int = 0
    ) -> tuple[ChannelSnapshot, Any]:
        """The channel's snapshot, and its channels.getFullChannel `full_chat`."""
        posts_wanted = self.settings.posts_count
        input_channel = raw.types.InputChannel(
            channel_id=channel.id, access_hash=channel.access_hash
        )
        peer = raw.types.InputPeerChannel(channel_id=channel.id, access_hash=channel.access_hash)
        # Enough for albums (up to 10 items) and service messages among the newest posts, and
        # for the young posts the last pass followed (`young` messages), in one page.
        limit = min(HISTORY_PAGE_MAX, max(posts_wanted * 4 + 10, young))
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
            whole = group_posts(messages)[: complete_posts(messages, exhausted)]
            others = tuple(post_numbers(g) for g in whole[posts_wanted:])
        except Exception as e:  # a bug in parsing one channel fails that channel alone
            raise ChannelParseError(
                username, f"unexpected error while reading @{username}: {describe(e)}"
            ) from e
        ids = frozenset(m.id for m in messages)
        snapshot = ChannelSnapshot(stats=stats, posts=posts, others=others, message_ids=ids)
        return snapshot, full.full_chat

    async def download(self, files: Sequence[MediaFile], *, timeout: float) -> dict[str, bytes]:
        """The files' bytes by key, within `timeout` seconds; a file that fails is left out
        (the next pass retries)."""
        if not files:
            return {}
        from itam_tgstats.telegram.downloads import download_files  # noqa: PLC0415

        return await download_files(self.client, files, timeout=timeout, sessions=self.dc_sessions)


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
    refused = f"Telegram refused the request for @{username}: {rpc_error_id(error)}"
    if isinstance(error, tg.BadRequest | tg.Forbidden):
        return ChannelError(username, refused)
    return TelegramError(refused)
