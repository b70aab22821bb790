"""Posts over time: when a post gains a point (while kept or younger than 25 hours), its
views 1 h and 24 h after posting, when its series goes, and the channel's ERR24. Pure: the
Redis reads and writes are start.py's and write.py's."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from itam_tgstats.models import ChannelSnapshot, Post, PostNumbers
from itam_tgstats.store.status import CLOCK_SKEW

HOUR = 3600
DAY = 86_400
# A post gains a point every pass while younger than this, then at most one an hour.
EVERY_PASS_FOR = DAY
SPACING_AFTER = HOUR
# A post no longer kept still gains points while younger than this: its point after the
# 24-hour mark gives its `views_24h`.
YOUNG = 25 * HOUR
# The most messages one getHistory page holds.
HISTORY_PAGE = 100
# Messages the first getHistory page holds beyond the young posts the last pass followed:
# room for what was published since.
NEW_MESSAGES = 10
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
class Followed:
    """A stored series' entry in the last-points hash: its last point, the post's date
    (unix time) and its views at 1 h and 24 h once known. What a pass needs of a series
    without reading it, also for a post no longer kept."""

    point: Point
    posted: int | None = None  # unknown in an entry an older version wrote
    views_1h: int | None = None
    views_24h: int | None = None

    def to_json(self) -> str:
        """Compact JSON: the point's fields, then `posted`, `views_1h` and `views_24h`."""
        data = json.loads(self.point.to_json())
        data.update(posted=self.posted, views_1h=self.views_1h, views_24h=self.views_24h)
        return json.dumps(data, separators=(",", ":"))


def parse_followed(value: Any) -> Followed | None:
    """A last-points hash value (a point, and maybe `posted` and the marks); None when its
    point is unreadable."""
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except (ValueError, RecursionError):  # not JSON, or nested ~1,000 deep
        return None
    point = parse_point(data)
    if point is None:
        return None
    posted, hour, day = (count(data.get(k)) for k in ("posted", *MARKS))
    return Followed(point, posted, hour, day)


def count(value: Any) -> int | None:
    """A stored integer, or None (a bool, a float, text, or nothing)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class SeriesWrite:
    """One channel's series changes this pass: the posts whose series stay (every other
    field is deleted), the point appended to each post that gains one, each changed entry
    of the last-points hash, and whether the series start afresh (the name now belongs to
    another channel). `left_out`: young posts the last pass followed that this answer did
    not reach back to; `wanted_next`: the messages the next pass's first page must hold
    (more than HISTORY_PAGE: the channel's last 25 hours do not fit one)."""

    kept: tuple[int, ...]
    appended: dict[int, str]
    reset: bool = False
    last: dict[int, str] = field(default_factory=dict)
    left_out: int = 0
    wanted_next: int = 0


def posted_at(post: Post) -> float | None:
    """The post's date as a unix time."""
    try:
        return datetime.fromisoformat(post.date).timestamp()
    except ValueError:
        return None


def gains_point(age: float, last: Point | None, now: int, days: int, *, kept: bool = True) -> bool:
    """Whether a post of this age gains a point this pass: every pass while younger than a
    day, then when the last point is an hour old; never once TG_POST_HISTORY_DAYS old. A
    post no longer kept (`kept` False; the caller follows it while younger than YOUNG) also
    gains one at the first pass past its 24-hour mark, which settles its `views_24h`."""
    if age >= days * DAY:
        return False
    if last is None or last.t > now + CLOCK_SKEW:
        # A last point further ahead than a clock's drift (a clock that was ahead, foreign
        # data) is no reason to skip one: the points ahead are dropped as it is appended.
        return True
    if now <= last.t:  # a second pass in the same second, or the clock went back a little
        return False
    if not kept and last.t < now - age + DAY <= now:
        return True
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


def err24_percent(views_24h: Iterable[int | None], subscribers: int) -> float | None:
    """Mean views 24 h after posting over the known ones (0 counts), per 100 subscribers."""
    known = [v for v in views_24h if v is not None]
    if not known or subscribers <= 0:
        return None
    return round(sum(known) / len(known) / subscribers * 100, 1)


@dataclass(frozen=True)
class _Seen:
    """A post of the answer, for its series: kept (a Post) or not (its numbers)."""

    id: int
    posted: int
    numbers: Point  # its numbers now
    kept: bool


def advance(
    snapshot: ChannelSnapshot,
    *,
    last_points: Mapping[int, Followed],
    stored: Mapping[int, tuple[int | None, int | None]],
    now: int,
    days: int,
    fresh: bool = False,
) -> tuple[ChannelSnapshot, SeriesWrite | None]:
    """The snapshot with `views_1h`, `views_24h` and `err24_percent` filled in, and its
    series' changes (None when TG_POST_HISTORY_DAYS is 0: everything stays null).

    A post gains points while kept or younger than YOUNG (`snapshot.others` holds the
    answer's posts beyond the kept ones); its series stays while it is kept or younger
    than `days`. `last_points`: every stored series' entry; `stored`: the views at 1 h and
    24 h the stored posts hold (entries an older version wrote lack them). `fresh`: what is
    stored under this name is another channel's: the series start afresh.
    """
    if fresh:
        last_points, stored = {}, {}
    if days <= 0:
        return snapshot, None
    seen: list[_Seen] = []
    for post in snapshot.posts:
        date = posted_at(post)
        if date is not None:
            seen.append(_Seen(post.id, int(date), Point.of(post, now), kept=True))
    kept_ids = {p.id for p in snapshot.posts}
    for other in snapshot.others:
        if other.id not in kept_ids and (now - other.date < YOUNG or other.id in last_points):
            seen.append(_Seen(other.id, other.date, numbers_of(other, now), kept=False))
    appended: dict[int, str] = {}
    entries: dict[int, Followed] = {}
    marks: dict[int, tuple[int | None, int | None]] = {}
    for one in seen:
        entry = last_points.get(one.id)
        last = entry.point if entry is not None else None
        age = now - one.posted
        young = one.kept or age < YOUNG
        new = one.numbers if young and gains_point(age, last, now, days, kept=one.kept) else None
        hour, day = stored.get(one.id, (None, None))
        if entry is not None:  # settled values: the entry's, else (older entries) the post's
            hour = entry.views_1h if entry.views_1h is not None else hour
            day = entry.views_24h if entry.views_24h is not None else day
        marks[one.id] = (
            views_at(one.posted + HOUR, hour, last, new),
            views_at(one.posted + DAY, day, last, new),
        )
        if new is not None:
            appended[one.id] = new.to_json()
        point = new or last
        if point is not None:
            entries[one.id] = Followed(point, one.posted, *marks[one.id])
    # A series stays while its post is kept or younger than `days` (by its stored date).
    final = {**last_points, **entries}
    stay = kept_ids | {
        i for i, e in final.items() if e.posted is not None and now - e.posted < days * DAY
    }
    posts = [
        replace(p, views_1h=marks[p.id][0], views_24h=marks[p.id][1]) if p.id in marks else p
        for p in snapshot.posts
    ]
    known = {i: final[i].views_24h for i in stay if i in final}
    known |= {p.id: p.views_24h for p in posts if p.views_24h is not None}
    stats = replace(
        snapshot.stats,
        err24_percent=err24_percent(known.values(), snapshot.stats.subscribers_count),
    )
    reached = min(snapshot.message_ids, default=None)
    left_out = sum(
        1
        for i, e in last_points.items()
        if i not in entries
        and e.posted is not None
        and now - e.posted < YOUNG
        and reached is not None
        and i < reached
    )
    series = SeriesWrite(
        kept=tuple(sorted(stay, reverse=True)),
        appended=appended,
        reset=fresh,
        last={i: e.to_json() for i, e in entries.items() if i in stay and last_points.get(i) != e},
        left_out=left_out,
        wanted_next=history_wanted({i: final[i] for i in stay if i in final}, kept_ids, now),
    )
    return replace(snapshot, stats=stats, posts=posts), series


def numbers_of(post: PostNumbers, now: int) -> Point:
    """A post's numbers now, from the answer's posts beyond the kept ones."""
    return Point(now, post.views, post.reactions, post.forwards, post.comments)


def fits_a_page(wanted: int) -> bool:
    """Whether the young posts `history_wanted` reaches for fit one page (the room for what
    was published since aside: more may come later, but nothing young is left out)."""
    return wanted - NEW_MESSAGES <= HISTORY_PAGE


def history_wanted(
    last_points: Mapping[int, Followed], stored_ids: Iterable[int], now: float
) -> int:
    """How many of the newest messages the first getHistory page must hold to reach the
    young posts the last pass followed: from the oldest of them to the newest post known,
    and NEW_MESSAGES more (0: none is young). Ids count every message, so this is at least
    what is needed."""
    young = [i for i, e in last_points.items() if e.posted is not None and now - e.posted < YOUNG]
    if not young:
        return 0
    newest = max([*last_points, *stored_ids])
    return newest - min(young) + 1 + NEW_MESSAGES


def stored_marks(posts: Any) -> dict[int, tuple[int | None, int | None]]:
    """From stored posts (JSON values): each post id → its stored (`views_1h`, `views_24h`)."""
    marks: dict[int, tuple[int | None, int | None]] = {}
    for post in posts if isinstance(posts, list) else []:
        if isinstance(post, dict) and isinstance(post.get("id"), int):
            marks[post["id"]] = (count(post.get(MARKS[0])), count(post.get(MARKS[1])))
    return marks
