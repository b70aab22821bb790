"""The JSON shapes stored in Redis (documented in docs/redis-keys.md), nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
    # Mean views 24 h after posting over the kept posts, per 100 subscribers (see history.py).
    err24_percent: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the contract's order."""
        return asdict(self)


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
    # What the site needs to render the post as Telegram does (see render.py).
    text_html: str = ""
    media: list[dict[str, Any]] = field(default_factory=list)
    link_preview: dict[str, Any] | None = None
    poll: dict[str, Any] | None = None
    buttons: list[list[dict[str, str]]] = field(default_factory=list)
    forwarded_from: dict[str, Any] | None = None
    edited_at: str | None = None
    author: str | None = None
    # Views 1 and 24 hours after `date`, from the post's series (see history.py).
    views_1h: int | None = None
    views_24h: int | None = None
    # Not stored: the images this post would show, to download (TG_MEDIA_DOWNLOAD).
    files: tuple[MediaFile, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the old worker's fields first, in their order, then the rest."""
        data = asdict(self)
        del data["files"]
        return data

    def image_keys(self) -> set[str]:
        """The `tg:media:…` keys this post's JSON references."""
        return images_of(self.media, self.link_preview)

    def with_images(self, available: set[str] | frozenset[str]) -> Post:
        """The post with every `image` not in `available` set to null (not stored yet)."""

        def keep(card: dict[str, Any]) -> dict[str, Any]:
            image = card.get("image")
            return {**card, "image": image if image in available else None}

        return replace(
            self,
            media=[keep(item) for item in self.media],
            link_preview=keep(self.link_preview) if self.link_preview is not None else None,
        )


@dataclass(frozen=True)
class PostNumbers:
    """A whole post of the getHistory answer beyond the kept ones: what its series needs."""

    id: int
    date: int  # unix time
    views: int
    reactions: int  # reactions_total
    forwards: int
    comments: int  # comments_count


@dataclass(frozen=True)
class ChannelSnapshot:
    """One pass's result: the stats and the posts, newest first."""

    stats: ChannelStats
    posts: list[Post]
    # Not stored as such: the other whole posts the answer held (their series, while
    # young), and the ids of every message it held (a stored post it reaches back to but no
    # longer holds was deleted).
    others: tuple[PostNumbers, ...] = ()
    message_ids: frozenset[int] = frozenset()

    def with_images(self, available: set[str] | frozenset[str]) -> ChannelSnapshot:
        """The snapshot with every `image` not in `available` set to null (see Post)."""
        return replace(self, posts=[p.with_images(available) for p in self.posts])

    def to_json(self) -> dict[str, Any]:
        """`{"stats": {...}, "posts": [...]}`, as `collect --dry-run` prints it."""
        return {"stats": self.stats.to_json(), "posts": [p.to_json() for p in self.posts]}


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel as the account can address it: its id and access hash."""

    id: int
    access_hash: int


def images_of(media: Any, link_preview: Any) -> set[str]:
    """The `image` keys a post's `media` items and `link_preview` name (stored JSON too:
    anything that is not the expected shape is skipped)."""
    cards = [*(media if isinstance(media, list) else []), link_preview]
    return {c["image"] for c in cards if isinstance(c, dict) and isinstance(c.get("image"), str)}


@dataclass(frozen=True)
class AdminStatsRead:
    """What a pass learned of one channel's statistics for admins (docs/admin-stats.md)."""

    can_view: bool  # channels.getFullChannel's can_view_stats: this account may read them
    asked_at: float | None = None  # when this pass asked for them (None: it did not)
    # `tg:channel:<name>:admin_stats` to write (None: not read this pass, the stored one stays)
    value: dict[str, Any] | None = field(default=None, repr=False)
    error: str | None = None  # why they were not read, one line
