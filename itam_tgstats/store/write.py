"""What a pass writes: the snapshot, series, images, status and peers in one MULTI/EXEC."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelError
from itam_tgstats.models import ChannelSnapshot, ResolvedChannel
from itam_tgstats.store.connection import Connection
from itam_tgstats.store.events import EventBatch
from itam_tgstats.store.keys import (
    ADMIN_STATS_KEY,
    CHANNELS_KEY,
    EVENTS_KEY,
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    LOCK_KEY,
    MEDIA_KEY_PREFIX,
    POST_HISTORY_KEY,
    STATS_KEY,
    STATUS_KEY,
    V1_KEYS,
    admin_stats_key,
    channel_keys,
    dumps,
    last_points_key,
)
from itam_tgstats.store.scripts import (
    ADOPT_HISTORY_SCRIPT,
    APPEND_SERIES_SCRIPT,
    ENSURE_TYPES_SCRIPT,
    MIRROR_ADMIN_STATS_SCRIPT,
    MIRROR_SERIES_SCRIPT,
    RELEASE_LOCK_SCRIPT,
    series_arguments,
)
from itam_tgstats.store.series import DAY, HISTORY_PAGE, SeriesWrite, advance, fits_a_page
from itam_tgstats.store.start import PassStart
from itam_tgstats.store.status import CLOCK_SKEW, parse_time

log = logging.getLogger(__name__)
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
        admin_stats: Mapping[str, dict[str, Any]] | None = None,
        events: EventBatch | None = None,
    ) -> None:
        """Write everything of one pass and release its lock in ONE MULTI/EXEC.

        `written`: the channels read this pass (the others keep their last snapshot);
        `peers`: newly resolved channels by peer key; `media`: images downloaded this pass;
        `stale_media`: image keys no kept post references any more, deleted here;
        `series`: each written channel's posts' series changes, by name (None: series are
        off, and every configured channel's are deleted); `admin_stats`: the admin
        statistics read this pass, by name (the others keep theirs); `events`: what the pass
        appends to `tg:events`.
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
            queue_admin_stats(pipe, names, admin_stats or {}, any(w.first for w in written))
            pipe.set(CHANNELS_KEY, dumps(list(names)))
            pipe.set(STATUS_KEY, dumps(status))
            append_events(pipe, events)
            for key, channel in (peers or {}).items():
                pipe.set(key, dumps({"id": channel.id, "access_hash": channel.access_hash}))
            pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)

    async def save_failure(
        self,
        status: dict[str, Any],
        *,
        token: str,
        peers: Mapping[str, ResolvedChannel] | None = None,
        events: EventBatch | None = None,
    ) -> None:
        """Record a failed pass (`tg:status`, the channels that failed after a success in
        `tg:events`, and the channels it did resolve: the next pass must not resolve them
        again) and release its lock, in one MULTI/EXEC."""
        async with self._locked_transaction("recording the failure") as pipe:
            pipe.set(STATUS_KEY, dumps(status))
            append_events(pipe, events)
            for key, channel in (peers or {}).items():
                pipe.set(key, dumps({"id": channel.id, "access_hash": channel.access_hash}))
            pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)


def queue_admin_stats(
    pipe: Any, names: Sequence[str], values: Mapping[str, Any], first_written: bool
) -> None:
    """Each channel's admin statistics read this pass, to its key, queued in the pass's
    transaction; when the first channel is written, `tg:channel:admin_stats` made what its
    own key holds (nothing: deleted, so that it never shows another channel's)."""
    for name, value in values.items():
        pipe.set(admin_stats_key(name), dumps(value))
    if first_written and names:
        pipe.eval(MIRROR_ADMIN_STATS_SCRIPT, 2, ADMIN_STATS_KEY, admin_stats_key(names[0]))


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
            wanted = start.history_wanted(index, now)
            log_young_window(name, changes, wanted, start.status, now)
        writes.append(ChannelWrite(name=name, snapshot=snapshot, first=index == 0))
    return writes, series


def _at(values: Sequence[T], index: int, default: T) -> T:
    """`values[index]`, or `default` past its end (a PassStart read for fewer channels)."""
    return values[index] if index < len(values) else default


def append_events(pipe: Any, events: EventBatch | None) -> None:
    """XADD each entry to `tg:events`, trimmed to about `events.maxlen` (nothing when there
    is no entry: TG_EVENTS_MAX=0 leaves an existing stream alone)."""
    if events is None or not events.entries:
        return
    # XADD on a key of another type would fail inside EXEC, the rest applied without it.
    pipe.eval(ENSURE_TYPES_SCRIPT, 1, EVENTS_KEY, "stream")
    for event in events.entries:
        pipe.xadd(EVENTS_KEY, event.fields(), maxlen=events.maxlen, approximate=True)


def log_young_window(name: str, changes: SeriesWrite, wanted: int, status: Any, now: int) -> None:
    """Said when a channel's young posts need more than one getHistory page (`changes`
    says after this pass, `wanted` said before it): it follows the newest that fit. At
    WARNING when that begins, and on the UTC day's first pass (by the previous pass's time
    in `tg:status`) while it lasts; at DEBUG on the other passes."""
    if changes.left_out:
        log.debug("@%s: %s young posts not reached this pass", name, changes.left_out)
    if fits_a_page(changes.wanted_next):
        return
    values = status if isinstance(status, dict) else {}
    times = [parse_time(values.get(k)) for k in ("last_success_at", "last_failure_at")]
    previous = max((int(t) for t in times if t is not None), default=None)
    first_today = previous is None or previous // DAY != now // DAY
    log.log(
        logging.WARNING if first_today or fits_a_page(wanted) else logging.DEBUG,
        "@%s: its posts of the last 25 hours do not fit one getHistory page (%s messages); "
        "the newest that fit are followed, the others get no views_24h (said once a day)",
        name,
        HISTORY_PAGE,
    )
