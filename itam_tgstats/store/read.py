"""What `show` reads: every key of the configured channels in one MULTI/EXEC."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from itam_tgstats.store.connection import Connection
from itam_tgstats.store.keys import (
    EVENTS_KEY,
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    POST_HISTORY_KEY,
    POSTS_KEY,
    STATS_KEY,
    STATUS_KEY,
    admin_stats_key,
    channel_keys,
    loads_or_text,
)
from itam_tgstats.store.start import is_post_id

# `show` reads this many of the newest `tg:events` entries (the view shows a channel's 10
# newest among them, `--json` the 50 newest).
EVENTS_READ = 1000


class ShowReads(Connection):
    """The reads of `show` and the health check."""

    async def read_all(  # noqa: PLR0912 - reworked with the bounded reads
        self,
        names: Sequence[str] = (),
        *,
        series: bool = False,
        admin_stats: bool = False,
        events: bool = False,
    ) -> dict[str, Any]:
        """What `show` needs, in one round trip: stats, posts, last_update, status, history
        (the original keys), and `channels`: each configured channel's key name (in order)
        to its `{"stats", "posts", "history"}`. With `series`, each of those also has
        `post_history` (post id → its points), which the health check never reads; with
        `admin_stats`, `admin_stats` (the channel's statistics for admins, or None). With
        `events`, `events`: the newest EVENTS_READ entries of `tg:events`, newest first (each
        `{"id", "type", "channel", "at", …}`; none when it is missing or not a stream).

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
            if admin_stats:
                for name in names:
                    pipe.get(admin_stats_key(name))
            if events:
                pipe.xrevrange(EVENTS_KEY, count=EVENTS_READ)
            answers = await pipe.execute(raise_on_error=False)
            entries = answers.pop() if events else []
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
        stats, posts, last_update, status, history, *rest = answers
        admin_values = rest[len(rest) - len(names) :] if admin_stats else []
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
            if admin_stats:
                channels[name]["admin_stats"] = loads_or_text(admin_values[position])
        view = {
            **original,
            "last_update": last_update,
            "status": loads_or_text(status),
            "channels": channels,
        }
        if events:
            listed = entries if isinstance(entries, list) else []  # a foreign key: none
            view["events"] = [{"id": i, **fields} for i, fields in listed]
        return view


def history_values(members: Iterable[str]) -> list[dict[str, Any]]:
    """A history sorted set's readable points, in its order (oldest first)."""
    return [p for p in (loads_or_text(m) for m in members) if isinstance(p, dict)]


def series_values(fields: Mapping[str, str]) -> dict[str, Any]:
    """A post_history hash as post id → its parsed points (unreadable text kept as text),
    newest post first."""

    def order(post_id: str) -> tuple[int, str]:
        return (-int(post_id), "") if is_post_id(post_id) else (1, post_id)

    return {k: loads_or_text(fields[k]) for k in sorted(fields, key=order)}
