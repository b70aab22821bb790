"""Posts over time: when a kept post gains a point, its views 1 h and 24 h after posting,
and the channel's ERR24. Pure: Redis reads and writes are store.py's."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from itam_tgstats.models import ChannelSnapshot, Post
from itam_tgstats.store.status import CLOCK_SKEW

HOUR = 3600
DAY = 86_400
# A post gains a point every pass while younger than this, then at most one an hour.
EVERY_PASS_FOR = DAY
SPACING_AFTER = HOUR
# The stored fields of the views 1 h and 24 h after posting.
MARKS = ("views_1h", "views_24h")


@dataclass(frozen=True)
class Point:
    """One point of a post's series: `{"t", "views", "reactions", "forwards", "comments"}`."""

    t: int
    views: int
    reactions: int
    forwards: int
    comments: int

    def to_json(self) -> str:
        """Compact JSON, as stored in the series."""
        return json.dumps(
            {
                "t": self.t,
                "views": self.views,
                "reactions": self.reactions,
                "forwards": self.forwards,
                "comments": self.comments,
            },
            separators=(",", ":"),
        )

    @classmethod
    def of(cls, post: Post, now: int) -> Point:
        """The post's numbers now."""
        return cls(now, post.views, post.reactions_total, post.forwards, post.comments_count)


def parse_point(value: Any) -> Point | None:
    """A stored point (JSON text or an already parsed object); None when unreadable."""
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except (ValueError, RecursionError):  # not JSON, or nested ~1,000 deep
        return None
    if not isinstance(data, dict):
        return None
    numbers = [data.get(k) for k in ("t", "views", "reactions", "forwards", "comments")]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    return Point(*(int(n) for n in numbers))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SeriesWrite:
    """One channel's series changes this pass: the posts whose series stay (every other
    field is deleted), the point appended to each post that gains one, and whether the
    series start afresh (the name now belongs to another channel)."""

    kept: tuple[int, ...]
    appended: dict[int, str]
    reset: bool = False


def posted_at(post: Post) -> float | None:
    """The post's date as a unix time."""
    try:
        return datetime.fromisoformat(post.date).timestamp()
    except ValueError:
        return None


def gains_point(age: float, last: Point | None, now: int, days: int) -> bool:
    """Whether a post of this age gains a point this pass (see the module docstring)."""
    if age >= days * DAY:
        return False
    if last is None or last.t > now + CLOCK_SKEW:
        # A last point further ahead than a clock's drift (a clock that was ahead, foreign
        # data) is no reason to skip one: the points ahead are dropped as it is appended.
        return True
    if now <= last.t:  # a second pass in the same second, or the clock went back a little
        return False
    return age < EVERY_PASS_FOR or now - last.t >= SPACING_AFTER


def interpolate(mark: float, before: Point, after: Point) -> int:
    """Views at `mark`, on the line between two points around it, rounded half up."""
    if after.t == before.t:
        return after.views
    share = (mark - before.t) / (after.t - before.t)
    return math.floor(before.views + (after.views - before.views) * share + 0.5)


def views_at(mark: float, stored: int | None, last: Point | None, new: Point | None) -> int | None:
    """A post's views at `mark` (unix time), or None while no point lies at or before it
    and one at or after it.

    A value is settled once found: `stored` (the previous pass's) is kept. Otherwise the
    last stored point is the only one that can lie before `mark` (an earlier point at or
    after it would have settled the value), so the point added this pass completes it.
    """
    if stored is not None:
        return stored
    if new is None or new.t < mark:
        return None
    if new.t == mark:
        return new.views
    if last is None or last.t > mark:
        return None
    return interpolate(mark, last, new)


def err24_percent(posts: list[Post], subscribers: int) -> float | None:
    """Mean views 24 h after posting over the posts that have them, per 100 subscribers."""
    known = [p.views_24h for p in posts if p.views_24h is not None]
    if not known or subscribers <= 0:
        return None
    return round(sum(known) / len(known) / subscribers * 100, 1)


def advance(
    snapshot: ChannelSnapshot,
    *,
    last_points: Mapping[int, Point],
    stored: Mapping[int, tuple[int | None, int | None]],
    now: int,
    days: int,
    fresh: bool = False,
) -> tuple[ChannelSnapshot, SeriesWrite | None]:
    """The snapshot with `views_1h`, `views_24h` and `err24_percent` filled in, and its
    series' changes (None when TG_POST_HISTORY_DAYS is 0: everything stays null).

    `last_points`: each kept post's last stored point; `stored`: the views at 1 h and
    24 h the previous pass stored for each post. `fresh`: what is stored under this name is
    another channel's: the series start afresh, nothing stored counts.
    """
    if fresh:
        last_points, stored = {}, {}
    if days <= 0:
        return snapshot, None
    posts: list[Post] = []
    appended: dict[int, str] = {}
    for post in snapshot.posts:
        date = posted_at(post)
        if date is None:
            posts.append(post)
            continue
        last = last_points.get(post.id)
        new = Point.of(post, now) if gains_point(now - date, last, now, days) else None
        if new is not None:
            appended[post.id] = new.to_json()
            if last is not None and last.t > now + CLOCK_SKEW:
                last = None  # dropped from the series with the points ahead of this one
        hour, day = stored.get(post.id, (None, None))
        posts.append(
            replace(
                post,
                views_1h=views_at(date + HOUR, hour, last, new),
                views_24h=views_at(date + DAY, day, last, new),
            )
        )
    stats = replace(
        snapshot.stats, err24_percent=err24_percent(posts, snapshot.stats.subscribers_count)
    )
    series = SeriesWrite(kept=tuple(p.id for p in snapshot.posts), appended=appended, reset=fresh)
    return ChannelSnapshot(stats=stats, posts=posts), series


def stored_marks(posts: Any) -> dict[int, tuple[int | None, int | None]]:
    """From stored posts (JSON values): each post id → its stored (`views_1h`, `views_24h`)."""

    def number(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    marks: dict[int, tuple[int | None, int | None]] = {}
    for post in posts if isinstance(posts, list) else []:
        if isinstance(post, dict) and isinstance(post.get("id"), int):
            marks[post["id"]] = (number(post.get(MARKS[0])), number(post.get(MARKS[1])))
    return marks
