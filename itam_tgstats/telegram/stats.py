"""Admin statistics from Telegram: stats.getBroadcastStats on the channel's statistics data
center, and stats.loadAsyncGraph there for each graph sent as a token.

Telegram keeps a channel's statistics on one data center, which channels.getFullChannel names
(`stats_dc`); asked anywhere else it answers STATS_MIGRATE_X. Neither Pyrogram nor kurigram
follows that error, and a graph token is only valid where it was issued. So the call goes to
`stats_dc` through a session opened as media downloads open theirs (DcSessions: one per pass
and DC), is asked once more on DC X after a STATS_MIGRATE_X (as Telethon's `get_stats` does
with a borrowed sender), and its tokens are loaded on the DC that answered.

Nothing here sleeps through a FloodWait or retries past one re-send of a dropped call: admin
statistics are optional, and every failure is one AdminStatsError with a one-line message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from pyrogram import errors as tg
from pyrogram import raw

from itam_tgstats.errors import describe
from itam_tgstats.models import AdminStatsRead, ResolvedChannel
from itam_tgstats.render.admin_stats import (
    UnreadableStats,
    admin_stats_value,
    async_tokens,
    clean_error,
)

log = logging.getLogger(__name__)

# Everything one channel's statistics cost (a session opened, the calls), at most.
STATS_TIMEOUT = 30.0

# A call that fails on a dropped connection is sent once more, not Pyrogram's ten times.
CALL_ATTEMPTS = 2

GET_STATS = "stats.getBroadcastStats"
LOAD_GRAPH = "stats.loadAsyncGraph"


class AdminStatsError(Exception):
    """Admin statistics were not read this pass (one line); the stored value stays."""

    def __init__(
        self, message: str, *, not_admin: bool = False, flood_wait: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # Telegram says this account may not read them (CHAT_ADMIN_REQUIRED).
        self.not_admin = not_admin
        # Seconds of a FloodWait Telegram asked for (not waited for).
        self.flood_wait = flood_wait

    def __str__(self) -> str:
        return self.message


class SessionSource(Protocol):
    """Where sessions come from: DcSessions, or anything that opens one per data center."""

    async def get(self, dc_id: int | None = None) -> Any:
        """A started, logged-in session on `dc_id` (None: the home DC)."""


async def read_admin_stats(
    sessions: SessionSource,
    username: str,
    channel: ResolvedChannel,
    full_chat: Any,
    *,
    asked_at: float | None,
    timeout: float = STATS_TIMEOUT,
) -> AdminStatsRead:
    """What the pass learns of a channel's admin statistics from its channels.getFullChannel
    answer (`full_chat`), and reads when they are due (`asked_at`: the pass's time; None: not
    due). No call unless due and `can_view_stats`; never raises but cancellation: a failure
    is logged and returned as the read's `error`.
    """
    can_view = getattr(full_chat, "can_view_stats", None) is True
    if asked_at is None or not can_view:
        return AdminStatsRead(can_view=can_view)
    stats_dc = getattr(full_chat, "stats_dc", None)
    input_channel = raw.types.InputChannel(channel_id=channel.id, access_hash=channel.access_hash)
    try:
        value = await fetch_admin_stats(
            sessions,
            input_channel,
            stats_dc if isinstance(stats_dc, int) and stats_dc > 0 else None,
            collected_at=asked_at,
            timeout=timeout,
        )
    except AdminStatsError as e:
        error = e.message
        log.warning("admin statistics of @%s not read (the stored ones stay): %s", username, error)
    except Exception as e:  # a bug of ours costs the statistics, never the channel
        error = f"unexpected error: {describe(e)}"
        log.error("admin statistics of @%s not read: %s", username, error, exc_info=True)
    else:
        log.info("admin statistics of @%s read", username)
        return AdminStatsRead(can_view=True, asked_at=asked_at, value=value)
    return AdminStatsRead(can_view=True, asked_at=asked_at, error=clean_error(error))


async def fetch_admin_stats(
    sessions: SessionSource,
    channel: Any,
    stats_dc: int | None,
    *,
    collected_at: float | None = None,
    timeout: float = STATS_TIMEOUT,
) -> dict[str, Any]:
    """The channel's admin statistics as stored (admin_stats.admin_stats_value).

    `channel`: its InputChannel (or InputPeerChannel); `stats_dc`: where getFullChannel says
    its statistics are (None: ask at home). `collected_at`: the pass's time (default now).
    Raises AdminStatsError for every failure: a refusal, a FloodWait, no answer within
    `timeout` s, a session that cannot be opened, an answer that cannot be stored.
    """
    channel = _input_channel(channel)
    try:
        async with asyncio.timeout(timeout):
            session, stats = await _broadcast_stats(sessions, channel, stats_dc)
            loaded = await _load_graphs(session, async_tokens(stats))
    except TimeoutError:
        raise AdminStatsError(f"no answer within {timeout:g} s") from None
    try:
        return admin_stats_value(
            stats, collected_at=time.time() if collected_at is None else collected_at, loaded=loaded
        )
    except UnreadableStats as e:
        raise AdminStatsError(f"{GET_STATS}: {e}") from e


async def _broadcast_stats(
    sessions: SessionSource, channel: Any, stats_dc: int | None
) -> tuple[Any, Any]:
    """(the session that answered, its stats.broadcastStats), following one STATS_MIGRATE_X."""
    query = raw.functions.stats.GetBroadcastStats(channel=channel)
    session = await _session(sessions, stats_dc)
    try:
        answer = await _call(session, query, GET_STATS)
    except tg.StatsMigrate as e:
        moved_to = e.value
        if not isinstance(moved_to, int) or moved_to == stats_dc:
            raise AdminStatsError(f"{GET_STATS}: STATS_MIGRATE_{moved_to} from DC{stats_dc}") from e
        log.debug("admin statistics: DC%s sends us to DC%s", stats_dc, moved_to)
        session = await _session(sessions, moved_to)
        try:
            answer = await _call(session, query, GET_STATS)
        except tg.StatsMigrate as again:
            raise AdminStatsError(
                f"{GET_STATS}: STATS_MIGRATE_{again.value} again, after DC{stats_dc} sent us to "
                f"DC{moved_to}"
            ) from again
    if not isinstance(answer, raw.types.stats.BroadcastStats):
        raise AdminStatsError(f"{GET_STATS} answered {type(answer).__name__}")
    return session, answer


async def _load_graphs(session: Any, tokens: dict[str, str]) -> dict[str, Any]:
    """Graph name → stats.loadAsyncGraph's answer for its token, all asked at once."""
    names = list(tokens)
    answers = await asyncio.gather(
        *(
            _call(session, raw.functions.stats.LoadAsyncGraph(token=tokens[name]), LOAD_GRAPH, name)
            for name in names
        ),
        return_exceptions=True,  # every call ends before this returns or raises
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return dict(zip(names, answers, strict=True))


async def _session(sessions: SessionSource, dc_id: int | None) -> Any:
    try:
        return await sessions.get(dc_id)
    except Exception as e:
        where = "the home DC" if dc_id is None else f"DC{dc_id}"
        raise AdminStatsError(f"cannot open a session on {where}: {_text(e)}") from e


async def _call(session: Any, query: Any, method: str, graph: str | None = None) -> Any:
    """`query` on `session`: Telegram's answer; STATS_MIGRATE_X raised as it is, every other
    failure as an AdminStatsError naming the method (and the graph)."""
    what = f"{method} ({graph})" if graph else method
    try:
        return await session.invoke(
            raw.functions.InvokeWithoutUpdates(query=query),
            retries=CALL_ATTEMPTS,
            sleep_threshold=0,  # a FloodWait is raised, never slept through
        )
    except tg.StatsMigrate:
        raise
    except tg.FloodWait as e:
        seconds = e.value if isinstance(e.value, int) else None
        raise AdminStatsError(
            f"{what}: FloodWait of {seconds} s (not waited for: the next due pass asks again)",
            flood_wait=seconds,
        ) from e
    except tg.RPCError as e:
        if e.ID == "CHAT_ADMIN_REQUIRED":
            raise AdminStatsError(
                f"{what}: this account is not an admin of the channel (CHAT_ADMIN_REQUIRED)",
                not_admin=True,
            ) from e
        raise AdminStatsError(f"{what}: {_text(e)}") from e
    except Exception as e:
        raise AdminStatsError(f"{what}: {_text(e)}") from e


def _text(error: BaseException) -> str:
    """An error in one short line: Telegram's code and error (its number in place of X)."""
    if isinstance(error, tg.RPCError):
        if error.ID is None:  # one kurigram does not know: its value is "[400 SOME_ERROR]"
            return str(error.value).strip("[]")
        if error.ID.endswith("_X") and isinstance(error.value, int):
            return f"{error.CODE} {error.ID[:-1]}{error.value}"
        return f"{error.CODE} {error.ID}"
    return describe(error)


def _input_channel(channel: Any) -> Any:
    if isinstance(channel, raw.types.InputPeerChannel):
        return raw.types.InputChannel(
            channel_id=channel.channel_id, access_hash=channel.access_hash
        )
    return channel
