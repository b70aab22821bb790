"""Telegram: the Pyrogram client's lifecycle, the few raw calls, and pure parsing.

Only `collect` and `session` import this module: it loads Pyrogram, which `show` and
`--help` never need. A pass costs `contacts.resolveUsername` once per account and channel
(the result is cached in Redis by the caller), then `channels.getFullChannel` and
`messages.getHistory`, sent together: one round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyrogram import Client, raw
from pyrogram import errors as tg

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelError, SessionError, TelegramError
from itam_tgstats.media import media_type
from itam_tgstats.models import (
    ChannelSnapshot,
    ChannelStats,
    MediaFile,
    Post,
    ResolvedChannel,
    iso_utc,
    marked_channel_id,
)
from itam_tgstats.render import render_post

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
# Pure parsing: raw objects in, the contract's models out.


def reaction_key(reaction: Any) -> str | None:
    """`👍` for an emoji, `custom:<id>` for a custom emoji, `⭐` for paid; None for others."""
    if isinstance(reaction, raw.types.ReactionEmoji):
        return str(reaction.emoticon)
    if isinstance(reaction, raw.types.ReactionCustomEmoji):
        return f"custom:{reaction.document_id}"
    if isinstance(reaction, raw.types.ReactionPaid):
        return "⭐"
    return None


def parse_reactions(reactions: Any) -> dict[str, int]:
    """Emoji → count from a raw MessageReactions (empty when there is none)."""
    counts: dict[str, int] = {}
    for result in getattr(reactions, "results", None) or []:
        key = reaction_key(result.reaction)
        if key is not None and result.count:
            counts[key] = counts.get(key, 0) + int(result.count)
    return counts


def comments_count(message: Any) -> int:
    """Comments in the linked discussion group: the `replies` counter of a comments thread."""
    replies = getattr(message, "replies", None)
    if replies is None or not replies.comments:
        return 0
    return int(replies.replies or 0)


def channel_username(channel: Any) -> str | None:
    """The channel's primary public username: `username`, else the first active `usernames`."""
    if getattr(channel, "username", None):
        return str(channel.username)
    for entry in getattr(channel, "usernames", None) or []:
        if entry.active:
            return str(entry.username)
    return None


def post_link(username: str | None, channel_id: int, message_id: int) -> str:
    """`https://t.me/<username>/<id>`, or `https://t.me/c/<channel id>/<id>` without a username."""
    if username:
        return f"https://t.me/{username}/{message_id}"
    return f"https://t.me/c/{channel_id}/{message_id}"


def is_post(message: Any) -> bool:
    """Whether a raw message is something a reader sees as (part of) a post."""
    return isinstance(message, raw.types.Message)


def group_posts(messages: Iterable[Any]) -> list[list[Any]]:
    """Posts newest first, each a list of its messages oldest first; albums are one post."""
    groups: list[list[Any]] = []
    for message in sorted(filter(is_post, messages), key=lambda m: m.id, reverse=True):
        grouped_id = message.grouped_id
        if groups and grouped_id is not None and groups[-1][0].grouped_id == grouped_id:
            groups[-1].insert(0, message)
        else:
            groups.append([message])
    return groups


def build_post(
    items: Sequence[Any],
    username: str | None,
    channel_id: int,
    *,
    chats: Sequence[Any] = (),
    users: Sequence[Any] = (),
    max_side: int | None = None,
) -> Post:
    """One post from its messages (oldest first): a single message or a whole album.

    `chats`/`users` (getHistory's) name forwarded senders; `max_side` picks image sizes to
    download (None: none), whose keys go into `image` and the files into `files`.
    """
    rendered, files = render_post(items, chats, users, max_side)
    first = items[0]
    media_items = [m for m in items if media_type(m.media) is not None]
    carrier = next((m for m in items if getattr(m.reactions, "results", None)), first)
    reactions = parse_reactions(carrier.reactions)
    kind = media_type(first.media) if media_items else None
    if kind is None and media_items:
        kind = media_type(media_items[0].media)
    return Post(
        id=first.id,
        text=next((m.message for m in items if m.message), ""),
        date=iso_utc(first.date),
        views=max(int(m.views or 0) for m in items),
        forwards=max(int(m.forwards or 0) for m in items),
        reactions=reactions,
        reactions_total=sum(reactions.values()),
        comments_count=max(comments_count(m) for m in items),
        link=post_link(username, channel_id, first.id),
        has_media=bool(media_items),
        media_type=kind,
        media_count=len(media_items),
        **rendered,
        files=tuple(files),
    )


def build_posts(
    messages: Iterable[Any],
    count: int,
    username: str | None,
    channel_id: int,
    *,
    chats: Sequence[Any] = (),
    users: Sequence[Any] = (),
    max_side: int | None = None,
) -> list[Post]:
    """The newest `count` posts, newest first."""
    return [
        build_post(g, username, channel_id, chats=chats, users=users, max_side=max_side)
        for g in group_posts(messages)[:count]
    ]


def build_stats(
    channel: Any,
    full_channel: Any,
    history_count: int,
    messages: Iterable[Any],
    collected_at: float,
) -> ChannelStats:
    """`tg:channel:stats` from the raw Channel, ChannelFull and getHistory's answer."""
    newest = max(filter(is_post, messages), key=lambda m: m.id, default=None)
    return ChannelStats(
        channel_id=marked_channel_id(channel.id),
        username=channel_username(channel),
        title=str(channel.title),
        subscribers_count=int(full_channel.participants_count or 0),
        posts_count=int(history_count),
        last_post_date=iso_utc(newest.date) if newest is not None else None,
        collected_at=iso_utc(collected_at),
    )


def history_total(history: Any) -> int:
    """The channel's total message count from a getHistory answer."""
    count = getattr(history, "count", None)
    return int(count) if count is not None else len(history.messages)


def complete_posts(messages: Sequence[Any], exhausted: bool) -> int:
    """How many posts are certainly whole: the oldest may be an album cut by the page's end."""
    groups = group_posts(messages)
    if exhausted or not groups:
        return len(groups)
    oldest = min(messages, key=lambda m: m.id)
    # The page ends inside an album only if its oldest message belongs to one.
    cut = (
        is_post(oldest)
        and oldest.grouped_id is not None
        and oldest.grouped_id == groups[-1][0].grouped_id
    )
    return len(groups) - 1 if cut else len(groups)


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
        options: dict[str, Any] = {}
        if protocol_factory is not None:
            options["protocol_factory"] = protocol_factory
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
                f"Telegram kept failing ({one_line(e)}): server errors or a broken connection; "
                "the next pass tries again"
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
            )
        raw_channel = next((c for c in full.chats if getattr(c, "id", None) == channel.id), None)
        if raw_channel is None:
            raise ChannelError(
                username, f"Telegram's answer for @{username} did not include the channel"
            )
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
        return ChannelSnapshot(stats=stats, posts=posts)

    async def download(self, files: Sequence[MediaFile]) -> dict[str, bytes]:
        """The files' bytes by key; a file that fails is left out (the next pass retries)."""
        if not files:
            return {}
        from itam_tgstats.downloads import download_files  # noqa: PLC0415

        # A download never fails the pass: leave most of TG_TIMEOUT for the rest of it.
        return await download_files(
            self.client, files, timeout=min(30.0, self.settings.timeout / 2)
        )


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
    ConnectionError, and so on. A revoked session is a SessionError.
    """
    try:
        await client.connect()
    except (tg.Unauthorized, tg.AuthKeyDuplicated) as e:
        await close_client(client)
        raise SessionError(session_message(e)) from None
    except Exception as e:  # noqa: BLE001 - see the docstring
        await close_client(client)
        raise TelegramError(
            f"cannot reach Telegram: the connection could not be set up ({describe(e)})"
        ) from None
    if client.session is None or not client.session.is_started.is_set():
        # Pyrogram returns from connect() and keeps retrying in the background; a pass (or
        # a person at a prompt) has no time for that.
        await close_client(client)
        raise TelegramError(
            "cannot reach Telegram: the connection could not be set up (no answer in time)"
        )


async def close_client(client: Client) -> None:
    """Disconnect, or close the storage a failed connect() left open; never raises."""
    try:
        if client.is_connected:
            await client.disconnect()
        elif getattr(client.storage, "conn", None) is not None:
            await client.storage.close()
    except Exception:  # cleanup must not hide the error being reported
        log.debug("closing the client failed", exc_info=True)


def describe(error: BaseException) -> str:
    """`KeyError: 0`, `ConnectionError`: the class and its message, as one short line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


def one_line(error: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def session_message(error: tg.RPCError) -> str:
    """The exit-3 message."""
    return (
        f"the Telegram session is not authorized any more ({error.ID}): "
        "mint a new one with `tgstats session` and put it in TG_SESSION_STRING"
    )


def channel_error(username: str, error: tg.RPCError) -> TelegramError:
    """A refusal as our one-line error: about this channel, or (any other RPC error) the pass."""
    if isinstance(error, tg.ChannelPrivate | tg.ChannelBanned | tg.ChannelPublicGroupNa):
        return ChannelError(
            username,
            f"channel @{username} is private or not readable by this account ({error.ID})",
        )
    if isinstance(error, STALE_PEER_ERRORS):
        return ChannelError(username, f"channel @{username} cannot be read ({error.ID})")
    return TelegramError(f"Telegram refused the request for @{username}: {error.CODE} {error.ID}")
