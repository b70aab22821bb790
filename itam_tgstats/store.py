"""Redis: every key name, the one-round-trip pass start, the atomic write, reads and status."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError, WatchError
from redis.maint_notifications import MaintNotificationsConfig

from itam_tgstats.config import describe_redis_url
from itam_tgstats.errors import LockLost, StoreError, one_line
from itam_tgstats.history import Point, SeriesWrite, parse_point, stored_marks
from itam_tgstats.models import ChannelSnapshot, ResolvedChannel, images_of
from itam_tgstats.scripts import (
    ADOPT_HISTORY_SCRIPT,
    APPEND_SERIES_SCRIPT,
    ENSURE_TYPES_SCRIPT,
    MIRROR_SERIES_SCRIPT,
    RELEASE_LOCK_SCRIPT,
    series_arguments,
)

log = logging.getLogger(__name__)

# The original worker's keys: the Go API reads these.
STATS_KEY = "tg:channel:stats"
POSTS_KEY = "tg:channel:posts"
LAST_UPDATE_KEY = "tg:last_update"
# Ours.
STATUS_KEY = "tg:status"
HISTORY_KEY = "tg:channel:history"
POST_HISTORY_KEY = "tg:channel:post_history"
LOCK_KEY = "tg:lock"
PEER_KEY_PREFIX = "tg:peer:"
MEDIA_KEY_PREFIX = "tg:media:"

CHANNELS_KEY = "tg:channels"

SNAPSHOT_KEYS = (STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY)


@dataclass(frozen=True)
class ChannelKeys:
    """Where one channel's stats, posts, history and posts' series live."""

    stats: str
    posts: str
    history: str
    post_history: str


# The first configured channel is also written here (the original worker's keys).
V1_KEYS = ChannelKeys(STATS_KEY, POSTS_KEY, HISTORY_KEY, POST_HISTORY_KEY)


def last_points_key(name: str) -> str:
    """`tg:channel:<name>:post_history_last`: each kept post's last point, so that a pass
    reads those few bytes, not every series (Redis cannot read the end of a hash value)."""
    return f"tg:channel:{name}:post_history_last"


def channel_keys(name: str) -> ChannelKeys:
    """`tg:channel:<name>:stats|posts|history|post_history` for a channel's key name."""
    prefix = f"tg:channel:{name}:"
    return ChannelKeys(
        f"{prefix}stats", f"{prefix}posts", f"{prefix}history", f"{prefix}post_history"
    )


LOST_LOCK = (
    "this pass lost tg:lock before writing (the lock expired or Redis lost it): another pass "
    "may have written since; nothing was written"
)


def peer_key(account: str, username: str) -> str:
    """`tg:peer:<account id>:<username>`; usernames are case-insensitive, so lower-cased."""
    return f"{PEER_KEY_PREFIX}{account}:{username.lower()}"


def dumps(value: Any) -> str:
    """JSON as the Go API reads it: UTF-8 characters, not \\u escapes."""
    return json.dumps(value, ensure_ascii=False)


def loads_or_text(value: str | None) -> Any:
    """A stored JSON value, or the text itself when it is not JSON (shown, never fatal)."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class PassStart:
    """What one round trip at the start of a pass learned."""

    locked: bool
    peers: tuple[ResolvedChannel | None, ...]
    status: dict[str, Any] | None
    # The `tg:media:…` keys the stored posts of the configured channels reference: written
    # with them in one transaction, so these are exactly the images Redis holds for them.
    media: frozenset[str] = frozenset()
    # Per configured channel, the image keys its stored posts reference.
    channel_media: tuple[frozenset[str], ...] = ()
    # The image keys the original `tg:channel:posts` references (what the Go API shows).
    original_media: frozenset[str] = frozenset()
    # Per configured channel, its stored posts' settled views at 1 h and 24 h, by post id.
    channel_marks: tuple[dict[int, tuple[int | None, int | None]], ...] = ()
    # Per configured channel, each kept post's last point (its series' last), by post id.
    channel_last_points: tuple[dict[int, Point], ...] = ()
    # Per configured channel, the channel id its own stored stats name (None: none stored):
    # what is stored under a name is another channel's when the name changed hands.
    channel_ids: tuple[int | None, ...] = ()

    @property
    def peer(self) -> ResolvedChannel | None:
        """The first channel's cached peer."""
        return self.peers[0] if self.peers else None


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


class Store:
    """The project's Redis. Every method raises StoreError when Redis fails."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis: redis.Redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=15,
            # No handshake chatter (HELLO, CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS): a pass
            # talks to Redis in two round trips, and a short-lived job gains nothing from them.
            # (A password or a database other than 0 still costs AUTH or SELECT.)
            protocol=2,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        # The pass's writes go through this connection, which WATCHes `tg:lock` from just
        # after the pass took it: if the lock changes meanwhile (it expired, another pass
        # took it, Redis lost it), EXEC writes nothing. Whether it was still the pass's when
        # the watch began is checked once, by a read after it (`_lock_checked`).
        self._guard: Any = None
        self._token: str | None = None
        self._lock_checked = False

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as e:
            detail = one_line(str(e), 200) or type(e).__name__
            raise StoreError(
                f"Redis at {describe_redis_url(self.url)} failed while {doing}: {detail}; "
                "check REDIS_URL and that Redis is running"
            ) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._guard is not None:
            await self._guard.reset()
            self._guard = None
        await self.redis.aclose()

    async def _watch_lock(self, token: str) -> None:
        """Start watching `tg:lock` (one round trip): the pass's writes depend on it."""
        async with self._errors("watching the lock"):
            guard = self.redis.pipeline(transaction=True)
            try:
                await guard.watch(LOCK_KEY)
            except BaseException:
                await guard.reset()  # type: ignore[no-untyped-call]
                raise
            self._guard, self._token, self._lock_checked = guard, token, False

    def _check_holder(self, holder: str | None) -> None:
        """LockLost unless `holder`, read after the watch began, is this pass's token."""
        if holder != self._token:
            raise LockLost(LOST_LOCK)
        self._lock_checked = True

    @asynccontextmanager
    async def _locked_transaction(self, doing: str) -> AsyncIterator[Any]:
        """A MULTI/EXEC that runs only while this pass still holds `tg:lock`.

        Raises LockLost (nothing written) when the lock changed since the pass took it.
        """
        guard, self._guard = self._guard, None
        if guard is None:
            raise LockLost("this pass does not hold tg:lock; nothing was written")
        try:
            async with self._errors(doing):
                if not self._lock_checked:  # one more round trip, on this path only
                    self._check_holder(await guard.get(LOCK_KEY))
                guard.multi()
                try:
                    yield guard
                    answers = await guard.execute(raise_on_error=False)
                except WatchError as e:
                    if "changed" not in str(e):  # the connection died: Redis failed
                        raise RedisError(str(e)) from None
                    raise LockLost(LOST_LOCK) from None
                refused = [a for a in answers if isinstance(a, Exception)]
                if refused:
                    # EXEC applies what it can: say plainly that the write is incomplete.
                    raise StoreError(
                        f"Redis at {describe_redis_url(self.url)} refused part of the pass's "
                        f"transaction while {doing} ({one_line(str(refused[0]), 200)}); the "
                        "rest was applied"
                    )
        finally:
            await guard.reset()

    async def check_before_write(self, images: Sequence[str]) -> set[str]:
        """Which of the `images` Redis still holds; and that the pass still holds `tg:lock`
        (LockLost if not: nothing is written). One round trip.
        """
        async with self._errors("checking the stored images"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(LOCK_KEY)
            for key in images:
                pipe.exists(key)
            holder, *found = await pipe.execute()
        if self._guard is not None:
            self._check_holder(holder)
        return {key for key, exists in zip(images, found, strict=True) if exists}

    async def begin_pass(
        self,
        token: str,
        lock_seconds: int,
        peers: Sequence[str],
        names: Sequence[str],
        *,
        series: bool = True,
    ) -> PassStart:
        """Take `tg:lock`; read the cached peers, the status, the stored posts (their images
        and settled views) and, with `series`, each kept post's last point.

        One round trip (then one more to watch the lock). `peers` and `names` are per
        configured channel, in order.
        """
        own = [channel_keys(n) for n in names]
        keys = [
            STATUS_KEY,
            POSTS_KEY,
            *peers,
            *(k.posts for k in own),
            *(k.stats for k in own),
        ]
        hashes = [last_points_key(n) for n in names] if series else []
        async with self._errors("starting the pass"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(LOCK_KEY, token, nx=True, ex=lock_seconds)
            for key in keys:
                pipe.get(key)
            for key in hashes:
                pipe.hgetall(key)
            # A key of the wrong type (foreign data) reads as missing, not as a failed pass.
            locked, *answers = await pipe.execute(raise_on_error=False)
            if isinstance(locked, Exception):
                raise locked
        try:
            if locked:
                await self._watch_lock(token)
            values = readable(answers, [*keys, *hashes])
            return pass_start(bool(locked), values, peers=len(peers), names=len(names))
        except BaseException:
            if locked:  # whatever went wrong, the lock is not left behind
                with contextlib.suppress(StoreError):
                    await self.release(token)
            raise

    async def read_peers(self, peers: Sequence[str]) -> list[ResolvedChannel | None]:
        """The cached channels, None where there is none."""
        async with self._errors("reading the cached channels"):
            values = await self.redis.mget(list(peers)) if peers else []
        return [parse_peer(v if isinstance(v, str) else None) for v in values]

    async def acquire(self, token: str, lock_seconds: int) -> bool:
        """Take `tg:lock` for `token` (False: another pass holds it)."""
        async with self._errors("taking the lock"):
            return bool(await self.redis.set(LOCK_KEY, token, nx=True, ex=lock_seconds))

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

    async def release(self, token: str) -> bool:
        """Release `tg:lock` if this token still holds it."""
        async with self._errors("releasing the lock"):
            return bool(await self.redis.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token))

    async def read_all(self, names: Sequence[str] = (), *, series: bool = False) -> dict[str, Any]:
        """What `show` needs, in one round trip: stats, posts, last_update, status, history
        (the original keys), and `channels`: each configured channel's key name (in order)
        to its `{"stats", "posts", "history"}`. With `series`, each of those also has
        `post_history` (post id → its points), which the health check never reads.

        One MULTI/EXEC, so every value comes from the same passes. Before this version's
        first pass only the original keys exist: the first channel falls back to them while
        its own keys are all missing.
        """
        per_key = 4 if series else 3
        async with self._errors("reading"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(STATS_KEY)
            pipe.get(POSTS_KEY)
            pipe.get(LAST_UPDATE_KEY)
            pipe.get(STATUS_KEY)
            pipe.zrange(HISTORY_KEY, 0, -1)
            if series:
                pipe.hgetall(POST_HISTORY_KEY)
            for name in names:
                keys = channel_keys(name)
                pipe.get(keys.stats)
                pipe.get(keys.posts)
                pipe.zrange(keys.history, 0, -1)
                if series:
                    pipe.hgetall(keys.post_history)
            stats, posts, last_update, status, history, *rest = await pipe.execute()
        original = {
            "stats": loads_or_text(stats),
            "posts": loads_or_text(posts),
            "history": history_values(history),
        }
        if series:
            original["post_history"] = series_values(rest.pop(0))
        channels: dict[str, dict[str, Any]] = {}
        for position, name in enumerate(names):
            values = rest[per_key * position : per_key * (position + 1)]
            own_stats, own_posts, own_history = values[:3]
            if position == 0 and own_stats is None and own_posts is None and not own_history:
                channels[name] = dict(original)
            else:
                channels[name] = {
                    "stats": loads_or_text(own_stats),
                    "posts": loads_or_text(own_posts),
                    "history": history_values(own_history),
                }
                if series:
                    channels[name]["post_history"] = series_values(values[3])
        return {
            **original,
            "last_update": last_update,
            "status": loads_or_text(status),
            "channels": channels,
        }


def history_values(members: Iterable[str]) -> list[dict[str, Any]]:
    """A history sorted set's readable points, in its order (oldest first)."""
    return [p for p in (loads_or_text(m) for m in members) if isinstance(p, dict)]


def readable(answers: Sequence[Any], keys: Sequence[str]) -> list[Any]:
    """Pipeline answers with the errors (a key of another type) as missing, each logged."""
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, Exception):
            log.warning("%s holds what this tool did not write (%s): ignored", key, answer)
    return [None if isinstance(a, Exception) else a for a in answers]


def pass_start(locked: bool, values: list[Any], *, peers: int, names: int) -> PassStart:
    """`begin_pass`'s answers, parsed: the status, the original posts, then per peer key,
    per channel its posts, per channel its stats, and (with series) per channel its last
    points."""
    status_value, v1_posts, *rest = values
    peer_values, rest = rest[:peers], rest[peers:]
    posts_values, stats_values, last_values = (
        rest[:names],
        rest[names : 2 * names],
        rest[2 * names :],
    )
    status = loads_or_text(status_value)
    stored = [loads_or_text(v) for v in posts_values]
    original = loads_or_text(v1_posts)
    original_media = frozenset(image_keys(original))
    # Before a first pass of version 2, only the original keys hold the first channel's
    # posts: their images count as the first channel's.
    media_of = [
        original if i == 0 and not v else p
        for i, (v, p) in enumerate(zip(posts_values, stored, strict=True))
    ]
    channel_media = tuple(frozenset(image_keys(posts)) for posts in media_of)
    return PassStart(
        locked=locked,
        peers=tuple(parse_peer(v) for v in peer_values),
        status=status if isinstance(status, dict) else None,
        media=original_media.union(*channel_media),
        channel_media=channel_media,
        original_media=original_media,
        channel_marks=tuple(stored_marks(posts) for posts in stored),
        channel_last_points=tuple(last_points(v or {}) for v in last_values),
        channel_ids=tuple(channel_id_of(loads_or_text(v)) for v in stats_values),
    )


def channel_id_of(stats: Any) -> int | None:
    """The `channel_id` of stored stats; None when missing or unreadable."""
    value = stats.get("channel_id") if isinstance(stats, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_post_id(field: str) -> bool:
    """A hash field that is a post id: ASCII digits (`"²".isdigit()` is true too)."""
    return field.isascii() and field.isdigit() and len(field) <= 19


def last_points(fields: Mapping[str, str]) -> dict[int, Point]:
    """A last-points hash as post id → Point; unreadable fields are left out."""
    points = {int(k): parse_point(v) for k, v in fields.items() if is_post_id(k)}
    return {k: p for k, p in points.items() if p is not None}


def series_values(fields: Mapping[str, str]) -> dict[str, Any]:
    """A post_history hash as post id → its parsed points (unreadable text kept as text),
    newest post first."""

    def order(post_id: str) -> tuple[int, str]:
        return (-int(post_id), "") if is_post_id(post_id) else (1, post_id)

    return {k: loads_or_text(fields[k]) for k in sorted(fields, key=order)}


def image_keys(posts: Any) -> set[str]:
    """The `tg:media:…` keys that stored posts (as JSON values) reference."""
    keys: set[str] = set()
    for post in posts if isinstance(posts, list) else []:
        if isinstance(post, dict):
            keys |= images_of(post.get("media"), post.get("link_preview"))
    return {k for k in keys if k.startswith(MEDIA_KEY_PREFIX)}


def parse_peer(value: str | None) -> ResolvedChannel | None:
    """A cached peer; None (resolve again) when missing or unreadable."""
    data = loads_or_text(value)
    if not isinstance(data, dict):
        return None
    try:
        return ResolvedChannel(id=int(data["id"]), access_hash=int(data["access_hash"]))
    except (KeyError, TypeError, ValueError):
        return None
