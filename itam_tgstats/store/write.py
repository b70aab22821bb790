"""What a pass writes: the snapshot, series, images, status and peers in one MULTI/EXEC."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelError
from itam_tgstats.models import ChannelSnapshot, ResolvedChannel
from itam_tgstats.store.connection import Connection
from itam_tgstats.store.keys import (
    CHANNELS_KEY,
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    LOCK_KEY,
    MEDIA_KEY_PREFIX,
    POST_HISTORY_KEY,
    STATS_KEY,
    STATUS_KEY,
    V1_KEYS,
    channel_keys,
    dumps,
    last_points_key,
)
from itam_tgstats.store.scripts import (
    ADOPT_HISTORY_SCRIPT,
    APPEND_SERIES_SCRIPT,
    ENSURE_TYPES_SCRIPT,
    MIRROR_SERIES_SCRIPT,
    RELEASE_LOCK_SCRIPT,
    series_arguments,
)
from itam_tgstats.store.series import SeriesWrite, advance
from itam_tgstats.store.start import PassStart
from itam_tgstats.store.status import CLOCK_SKEW

T = TypeVar("T")


@dataclass(frozen=True)
class ChannelWrite:
    """One channel's successful read, to write: its key name and snapshot."""

    name: str
    snapshot: ChannelSnapshot
    first: bool  # the first configured channel: also the original worker's keys


def history_point(snapshot: ChannelSnapshot, now: int) -> str:
    """A `tg:channel:history` member: compact JSON."""
    point = {
        "t": now,
        "subscribers": snapshot.stats.subscribers_count,
        "posts": snapshot.stats.posts_count,
    }
    return json.dumps(point, separators=(",", ":"))


class PassWrites(Connection):
    """A pass's one write: its snapshot, or its failure."""

    async def save_pass(
        self,
        written: Sequence[ChannelWrite],
        *,
        names: Sequence[str],
        status: dict[str, Any],
        token: str,
        now: int,
        history_days: int,
        peers: Mapping[str, ResolvedChannel] | None = None,
        media: Mapping[str, bytes] | None = None,
        stale_media: Iterable[str] = (),
        series: Mapping[str, SeriesWrite] | None = None,
    ) -> None:
        """Write everything of one pass and release its lock in ONE MULTI/EXEC.

        `written`: the channels read this pass (the others keep their last snapshot);
        `peers`: newly resolved channels by peer key; `media`: images downloaded this pass;
        `stale_media`: image keys no kept post references any more, deleted here;
        `series`: each written channel's posts' series changes, by name (None: series are
        off, and every configured channel's are deleted).
        """
        async with self._locked_transaction("writing the snapshot") as pipe:
            histories = [
                k.history
                for w in written
                for k in (channel_keys(w.name), *([V1_KEYS] if w.first else []))
            ]
            if histories:  # ZADD fails on a key of another type, and EXEC goes on without it
                pipe.eval(
                    ENSURE_TYPES_SCRIPT, len(histories), *histories, *["zset"] * len(histories)
                )
            if media:
                pipe.mset(dict(media))
            stale = sorted(k for k in stale_media if k.startswith(MEDIA_KEY_PREFIX))
            if stale:
                pipe.delete(*stale)
            point_cutoff = f"({now - history_days * 86400}"
            for write in written:
                snapshot = write.snapshot
                stats = dumps(snapshot.stats.to_json())
                posts = dumps([p.to_json() for p in snapshot.posts])
                point = history_point(snapshot, now)
                own = channel_keys(write.name)
                targets = [own, *([V1_KEYS] if write.first else [])]
                changes = (series or {}).get(write.name)
                if changes is not None:
                    arguments = series_arguments(changes)
                    pipe.eval(
                        APPEND_SERIES_SCRIPT,
                        2,
                        own.post_history,
                        last_points_key(write.name),
                        *arguments,
                    )
                if write.first:
                    channel_id = str(snapshot.stats.channel_id)
                    pipe.eval(
                        ADOPT_HISTORY_SCRIPT, 3, own.history, HISTORY_KEY, STATS_KEY, channel_id
                    )
                    if changes is not None:  # before either channel's stats are replaced
                        pipe.eval(
                            MIRROR_SERIES_SCRIPT,
                            4,
                            POST_HISTORY_KEY,
                            own.post_history,
                            STATS_KEY,
                            own.stats,
                            *arguments,
                        )
                for keys in targets:
                    pipe.set(keys.stats, stats)
                    pipe.set(keys.posts, posts)
                    pipe.zadd(keys.history, {point: now})
                    pipe.zremrangebyscore(keys.history, "-inf", point_cutoff)
                    # Points ahead of the clock (no pass's) would stay for ever.
                    pipe.zremrangebyscore(keys.history, f"({now + CLOCK_SKEW}", "+inf")
                if write.first:
                    pipe.set(LAST_UPDATE_KEY, snapshot.stats.collected_at)
            if series is None:
                series_keys = [
                    k for n in names for k in (channel_keys(n).post_history, last_points_key(n))
                ]
                pipe.delete(POST_HISTORY_KEY, *series_keys)
            pipe.set(CHANNELS_KEY, dumps(list(names)))
            pipe.set(STATUS_KEY, dumps(status))
            for key, channel in (peers or {}).items():
                pipe.set(key, dumps({"id": channel.id, "access_hash": channel.access_hash}))
            pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)

    async def save_failure(
        self,
        status: dict[str, Any],
        *,
        token: str,
        peers: Mapping[str, ResolvedChannel] | None = None,
    ) -> None:
        """Record a failed pass (`tg:status`, and the channels it did resolve: the next pass
        must not resolve them again) and release its lock, in one MULTI/EXEC."""
        async with self._locked_transaction("recording the failure") as pipe:
            pipe.set(STATUS_KEY, dumps(status))
            for key, channel in (peers or {}).items():
                pipe.set(key, dumps({"id": channel.id, "access_hash": channel.access_hash}))
            pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)


def over_time(
    settings: Settings,
    start: PassStart,
    names: Sequence[str],
    results: Sequence[ChannelSnapshot | ChannelError],
    now: int,
) -> tuple[list[ChannelWrite], dict[str, SeriesWrite]]:
    """The channels read, to write, with their posts' views over time filled in; and each
    one's series changes by name (none with TG_POST_HISTORY_DAYS=0)."""
    writes: list[ChannelWrite] = []
    series: dict[str, SeriesWrite] = {}
    for index, (name, result) in enumerate(zip(names, results, strict=True)):
        if isinstance(result, ChannelError):
            continue
        stored_id = _at(start.channel_ids, index, None)
        snapshot, changes = advance(
            result,
            last_points=_at(start.channel_last_points, index, {}),
            stored=_at(start.channel_marks, index, {}),
            now=now,
            days=settings.post_history_days,
            fresh=stored_id is not None and stored_id != result.stats.channel_id,
        )
        if changes is not None:
            series[name] = changes
        writes.append(ChannelWrite(name=name, snapshot=snapshot, first=index == 0))
    return writes, series


def _at(values: Sequence[T], index: int, default: T) -> T:
    """`values[index]`, or `default` past its end (a PassStart read for fewer channels)."""
    return values[index] if index < len(values) else default
