"""The JSON shapes stored in Redis (documented in docs/redis-keys.md), nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso_utc(timestamp: float) -> str:
    """A unix time as ISO-8601 UTC with seconds precision: `2025-01-07T12:15:00+00:00`."""
    return datetime.fromtimestamp(int(timestamp), tz=UTC).isoformat(timespec="seconds")


def marked_channel_id(channel_id: int) -> int:
    """The Bot-API style id of a channel: -100 followed by its id (ids above 2**31 too)."""
    return -(1_000_000_000_000 + channel_id)


@dataclass(frozen=True)
class ChannelStats:
    """`tg:channel:stats`."""

    channel_id: int
    username: str | None
    title: str
    subscribers_count: int
    posts_count: int
    last_post_date: str | None
    collected_at: str

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the contract's order."""
        return asdict(self)


@dataclass(frozen=True)
class Post:
    """One item of `tg:channel:posts`: what a reader sees as one post (an album is one)."""

    id: int
    text: str
    date: str
    views: int
    forwards: int
    reactions: dict[str, int] = field(default_factory=dict)
    reactions_total: int = 0
    comments_count: int = 0
    link: str = ""
    has_media: bool = False
    media_type: str | None = None
    media_count: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the contract's order."""
        return asdict(self)


@dataclass(frozen=True)
class ChannelSnapshot:
    """One pass's result: the stats and the posts, newest first."""

    stats: ChannelStats
    posts: list[Post]

    def to_json(self) -> dict[str, Any]:
        """`{"stats": {...}, "posts": [...]}`, as `collect --dry-run` prints it."""
        return {"stats": self.stats.to_json(), "posts": [p.to_json() for p in self.posts]}


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel as the account can address it: its id and access hash."""

    id: int
    access_hash: int


@dataclass(frozen=True)
class MediaFile:
    """A photo size or document thumbnail to download, and the Redis key it is stored under."""

    key: str  # tg:media:<photo or document id>:<size type>
    kind: str  # "photo" (a Photo's size) or "document" (a Document's thumbnail)
    id: int
    access_hash: int
    file_reference: bytes = field(repr=False)
    dc_id: int
    size_type: str
    size: int  # bytes, as Telegram states it (0 when it does not say)
