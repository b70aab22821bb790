"""Redis: every key name, the one-round-trip pass start, the atomic write, reads and status."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from itam_tgstats.config import describe_redis_url
from itam_tgstats.errors import StoreError
from itam_tgstats.models import ChannelSnapshot, ResolvedChannel, iso_utc

log = logging.getLogger(__name__)

# The original worker's keys: the Go API reads these.
STATS_KEY = "tg:channel:stats"
POSTS_KEY = "tg:channel:posts"
LAST_UPDATE_KEY = "tg:last_update"
# Ours.
STATUS_KEY = "tg:status"
HISTORY_KEY = "tg:channel:history"
LOCK_KEY = "tg:lock"
PEER_KEY_PREFIX = "tg:peer:"
MEDIA_KEY_PREFIX = "tg:media:"

SNAPSHOT_KEYS = (STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY)

# Compare-and-delete in one server-side step: a pass never deletes another pass's lock.
RELEASE_LOCK_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


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
    peer: ResolvedChannel | None
    status: dict[str, Any] | None
    # The `tg:media:…` keys the stored posts reference: written with them in one
    # transaction, so these are exactly the images Redis holds.
    media: frozenset[str] = frozenset()


def next_status(
    previous: dict[str, Any] | None,
    *,
    now: float,
    ok: bool,
    exit_code: int = 0,
    error: str | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """`tg:status` after a pass: failures counted in a row, reset by a success."""
    prev = previous if isinstance(previous, dict) else {}
    failures = prev.get("consecutive_failures")
    failures = failures if isinstance(failures, int) and failures >= 0 else 0
    return {
        "ok": ok,
        "last_success_at": iso_utc(now) if ok else prev.get("last_success_at"),
        "last_failure_at": prev.get("last_failure_at") if ok else iso_utc(now),
        "last_error": prev.get("last_error") if ok else error,
        "exit_code": exit_code,
        "consecutive_failures": 0 if ok else failures + 1,
        "retry_after": iso_utc(retry_after) if retry_after is not None else None,
    }


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

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as e:
            detail = " ".join(str(e).split())[:200] or type(e).__name__
            raise StoreError(
                f"Redis at {describe_redis_url(self.url)} failed while {doing}: {detail}; "
                "check REDIS_URL and that Redis is running"
            ) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    async def ping(self) -> None:
        """Check that Redis answers."""
        async with self._errors("answering PING"):
            await self.redis.ping()

    async def begin_pass(self, token: str, lock_seconds: int, peer: str) -> PassStart:
        """Take `tg:lock` and read the cached peer and the status: one round trip."""
        async with self._errors("starting the pass"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(LOCK_KEY, token, nx=True, ex=lock_seconds)
            pipe.get(peer)
            pipe.get(STATUS_KEY)
            pipe.get(POSTS_KEY)
            locked, peer_value, status_value, posts_value = await pipe.execute()
        status = loads_or_text(status_value)
        return PassStart(
            locked=bool(locked),
            peer=parse_peer(peer_value),
            status=status if isinstance(status, dict) else None,
            media=frozenset(image_keys(loads_or_text(posts_value))),
        )

    async def read_peer(self, peer: str) -> ResolvedChannel | None:
        """The cached channel, if any."""
        async with self._errors("reading the cached channel"):
            value = await self.redis.get(peer)
            return parse_peer(value if isinstance(value, str) else None)

    async def lock_holder(self) -> str | None:
        """The token of the pass holding `tg:lock`, if one does."""
        async with self._errors("reading the lock"):
            value = await self.redis.get(LOCK_KEY)
            return str(value) if value is not None else None

    async def save_snapshot(
        self,
        snapshot: ChannelSnapshot,
        *,
        status: dict[str, Any],
        token: str,
        now: int,
        history_days: int,
        peer: str,
        channel: ResolvedChannel | None,
        media: Mapping[str, bytes] | None = None,
        stale_media: Iterable[str] = (),
    ) -> None:
        """Write everything of one pass and release its lock in ONE MULTI/EXEC.

        `media`: images downloaded this pass, by key; `stale_media`: image keys no kept post
        references any more, deleted in the same transaction.
        """
        async with self._errors("writing the snapshot"):
            pipe = self.redis.pipeline(transaction=True)
            if media:
                pipe.mset(dict(media))
            stale = sorted(k for k in stale_media if k.startswith(MEDIA_KEY_PREFIX))
            if stale:
                pipe.delete(*stale)
            pipe.set(STATS_KEY, dumps(snapshot.stats.to_json()))
            pipe.set(POSTS_KEY, dumps([p.to_json() for p in snapshot.posts]))
            pipe.set(LAST_UPDATE_KEY, snapshot.stats.collected_at)
            pipe.set(STATUS_KEY, dumps(status))
            pipe.zadd(HISTORY_KEY, {history_point(snapshot, now): now})
            pipe.zremrangebyscore(HISTORY_KEY, "-inf", f"({now - history_days * 86400}")
            if channel is not None:
                pipe.set(peer, dumps({"id": channel.id, "access_hash": channel.access_hash}))
            pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)
            await pipe.execute()

    async def save_failure(self, status: dict[str, Any], *, token: str | None) -> None:
        """Record a failed pass (only `tg:status`) and release its lock, in one MULTI/EXEC."""
        async with self._errors("recording the failure"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(STATUS_KEY, dumps(status))
            if token is not None:
                pipe.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token)
            await pipe.execute()

    async def release(self, token: str) -> bool:
        """Release `tg:lock` if this token still holds it."""
        async with self._errors("releasing the lock"):
            return bool(await self.redis.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token))

    async def read_all(self) -> dict[str, Any]:
        """What `show` needs, read in one round trip: stats, posts, last_update, status, history."""
        async with self._errors("reading"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(STATS_KEY)
            pipe.get(POSTS_KEY)
            pipe.get(LAST_UPDATE_KEY)
            pipe.get(STATUS_KEY)
            pipe.zrange(HISTORY_KEY, 0, -1)
            stats, posts, last_update, status, history = await pipe.execute()
        return {
            "stats": loads_or_text(stats),
            "posts": loads_or_text(posts),
            "last_update": last_update,
            "status": loads_or_text(status),
            "history": [p for p in (loads_or_text(h) for h in history) if isinstance(p, dict)],
        }


def image_keys(posts: Any) -> set[str]:
    """The `tg:media:…` keys that stored posts (as JSON values) reference."""
    keys: set[str] = set()
    for post in posts if isinstance(posts, list) else []:
        if not isinstance(post, dict):
            continue
        preview = post.get("link_preview")
        cards = [*(post.get("media") or []), preview if isinstance(preview, dict) else {}]
        for card in cards:
            image = card.get("image") if isinstance(card, dict) else None
            if isinstance(image, str) and image.startswith(MEDIA_KEY_PREFIX):
                keys.add(image)
    return keys


def parse_peer(value: str | None) -> ResolvedChannel | None:
    """A cached peer; None (resolve again) when missing or unreadable."""
    data = loads_or_text(value)
    if not isinstance(data, dict):
        return None
    try:
        return ResolvedChannel(id=int(data["id"]), access_hash=int(data["access_hash"]))
    except (KeyError, TypeError, ValueError):
        return None
