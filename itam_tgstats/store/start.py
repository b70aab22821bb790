"""What a pass reads at its start: the lock, cached peers, status, stored posts and points."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itam_tgstats.errors import StoreError
from itam_tgstats.models import ResolvedChannel, images_of
from itam_tgstats.store.connection import Connection
from itam_tgstats.store.keys import (
    LOCK_KEY,
    MEDIA_KEY_PREFIX,
    POSTS_KEY,
    STATUS_KEY,
    channel_keys,
    last_points_key,
    loads_or_text,
)
from itam_tgstats.store.scripts import TAKE_LOCK_SCRIPT
from itam_tgstats.store.series import Followed, history_wanted, parse_followed, stored_marks

log = logging.getLogger(__name__)

# The longest any pass holds `tg:lock`: TG_TIMEOUT at its maximum (86,400 s) and the 30 s a
# lock outlives it. A lock without expiry, or expiring later, is no pass's: taken over.
LONGEST_LOCK_MS = (86_400 + 30) * 1000


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
    # Per configured channel, each stored series' entry (its last point, the post's date and
    # settled views), by post id.
    channel_last_points: tuple[dict[int, Followed], ...] = ()
    # Per configured channel, the channel id its own stored stats name (None: none stored):
    # what is stored under a name is another channel's when the name changed hands.
    channel_ids: tuple[int | None, ...] = ()
    # Per configured channel, its stored posts as read (None when missing): what the events
    # of the pass compare the new posts with.
    channel_posts: tuple[Any, ...] = ()

    def history_wanted(self, index: int, now: float) -> int:
        """How many of the newest messages channel `index`'s first getHistory page must
        hold to reach the young posts the last pass followed (0: no young post)."""
        if index >= len(self.channel_last_points):
            return 0
        return history_wanted(self.channel_last_points[index], self.channel_marks[index], now)

    @property
    def peer(self) -> ResolvedChannel | None:
        """The first channel's cached peer."""
        return self.peers[0] if self.peers else None


class PassReads(Connection):
    """The reads of a pass before it writes."""

    async def check_before_write(self, images: Sequence[str]) -> set[str]:
        """Which of the `images` Redis still holds; and that the pass still holds `tg:lock`
        (LockLost if not: nothing is written). One round trip.
        """
        async with self._errors("checking the stored images"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(LOCK_KEY)
            for key in images:
                pipe.exists(key)
            # A lock of another type (not a pass's) answers with an error: not this pass's.
            holder, *found = await pipe.execute(raise_on_error=False)
        if self._guard is not None:
            self._check_holder(holder if isinstance(holder, str) else None)
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
            pipe.eval(TAKE_LOCK_SCRIPT, 1, LOCK_KEY, token, lock_seconds * 1000, LONGEST_LOCK_MS)
            for key in keys:
                pipe.get(key)
            for key in hashes:
                pipe.hgetall(key)
            # A key of the wrong type (foreign data) reads as missing, not as a failed pass.
            locked, *answers = await pipe.execute(raise_on_error=False)
            if isinstance(locked, Exception):
                raise locked
        if isinstance(locked, list):
            log.warning("%s; taken over", foreign_lock(*locked))
        try:
            if locked:
                await self._watch_lock(token)
            values = readable(answers, [*keys, *hashes])
            return pass_start(
                bool(locked), values, peers=len(peers), names=len(names), keys=[*keys, *hashes]
            )
        except BaseException:
            if locked:  # whatever went wrong, the lock is not left behind
                with contextlib.suppress(StoreError):
                    await self.release(token)
            raise

    async def read_peers(self, peers: Sequence[str]) -> list[ResolvedChannel | None]:
        """The cached channels, None where there is none."""
        async with self._errors("reading the cached channels"):
            values = await self.redis.mget(list(peers)) if peers else []
        return [
            parse_peer(v if isinstance(v, str) else None, key)
            for key, v in zip(peers, values, strict=True)
        ]


def foreign_lock(kind: str, left_ms: int) -> str:
    """What a `tg:lock` no pass could hold was (TAKE_LOCK_SCRIPT's answer), in words."""
    if kind != "string":
        return f"tg:lock held a Redis {kind}, not a pass's token"
    if left_ms < 0:
        return "tg:lock had no expiry (a pass's lock expires after TG_TIMEOUT + 30 s)"
    return (
        f"tg:lock was held for {-(-left_ms // 1000)} s more, longer than any pass holds it "
        f"(at most {LONGEST_LOCK_MS // 1000} s)"
    )


def readable(answers: Sequence[Any], keys: Sequence[str]) -> list[Any]:
    """Pipeline answers with the errors (a key of another type) as missing, each logged."""
    for key, answer in zip(keys, answers, strict=True):
        if isinstance(answer, Exception):
            log.warning("%s holds what this tool did not write (%s): ignored", key, answer)
    return [None if isinstance(a, Exception) else a for a in answers]


def pass_start(
    locked: bool,
    values: list[Any],
    *,
    peers: int,
    names: int,
    keys: Sequence[str] = (),
) -> PassStart:
    """`begin_pass`'s answers, parsed: the status, the original posts, then per peer key,
    per channel its posts, per channel its stats, and (with series) per channel its last
    points. `keys`: the keys they were read from, named in the line about a value that
    cannot be read (it reads as missing)."""
    keys = list(keys) or ["a value"] * len(values)
    status_key, v1_key, *rest_keys = keys
    status_value, v1_posts, *rest = values
    peer_values, rest = rest[:peers], rest[peers:]
    peer_keys, rest_keys = rest_keys[:peers], rest_keys[peers:]
    posts_values, stats_values, last_values = (
        rest[:names],
        rest[names : 2 * names],
        rest[2 * names :],
    )
    posts_keys, stats_keys, last_keys = (
        rest_keys[:names],
        rest_keys[names : 2 * names],
        rest_keys[2 * names :] or ["a value"] * len(last_values),
    )
    status = loads_or_text(status_value, status_key)
    stored = [loads_or_text(v, k) for v, k in zip(posts_values, posts_keys, strict=True)]
    original = loads_or_text(v1_posts, v1_key)
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
        peers=tuple(parse_peer(v, k) for v, k in zip(peer_values, peer_keys, strict=True)),
        status=status if isinstance(status, dict) else None,
        media=original_media.union(*channel_media),
        channel_media=channel_media,
        original_media=original_media,
        channel_marks=tuple(stored_marks(posts) for posts in stored),
        channel_last_points=tuple(
            last_points(v or {}, k) for v, k in zip(last_values, last_keys, strict=True)
        ),
        channel_ids=tuple(
            channel_id_of(loads_or_text(v, k))
            for v, k in zip(stats_values, stats_keys, strict=True)
        ),
        channel_posts=tuple(stored),
    )


def channel_id_of(stats: Any) -> int | None:
    """The `channel_id` of stored stats; None when missing or unreadable."""
    value = stats.get("channel_id") if isinstance(stats, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_post_id(field: str) -> bool:
    """A hash field that is a post id: ASCII digits (`"²".isdigit()` is true too)."""
    return field.isascii() and field.isdigit() and len(field) <= 19


def last_points(fields: Mapping[str, str], key: str = "a last-points hash") -> dict[int, Followed]:
    """A last-points hash as post id → its entry; unreadable fields are left out (one line
    names `key` and how many)."""
    points = {int(k): parse_followed(v) for k, v in fields.items() if is_post_id(k)}
    readable = {k: p for k, p in points.items() if p is not None}
    if len(readable) < len(fields):
        log.warning(
            "%s: %d of its fields are not this tool's (unreadable): read as missing",
            key,
            len(fields) - len(readable),
        )
    return readable


def image_keys(posts: Any) -> set[str]:
    """The `tg:media:…` keys that stored posts (as JSON values) reference."""
    keys: set[str] = set()
    for post in posts if isinstance(posts, list) else []:
        if isinstance(post, dict):
            keys |= images_of(post.get("media"), post.get("link_preview"))
    return {k for k in keys if k.startswith(MEDIA_KEY_PREFIX)}


def parse_peer(value: str | None, key: str = "a cached peer") -> ResolvedChannel | None:
    """A cached peer; None (resolve again) when missing or unreadable."""
    data = loads_or_text(value, key)
    if not isinstance(data, dict):
        return None
    try:
        return ResolvedChannel(id=int(data["id"]), access_hash=int(data["access_hash"]))
    except (KeyError, TypeError, ValueError):
        return None
