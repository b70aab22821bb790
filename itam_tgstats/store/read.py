"""What `show` reads: every key of the configured channels in one atomic step, bounded; and
what the health check reads: only what freshness needs."""

from __future__ import annotations

import logging
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
from itam_tgstats.store.scripts import READ_SCRIPT
from itam_tgstats.store.start import is_post_id

log = logging.getLogger(__name__)

# The most `show` loads of one value (a string, or all of a history's or series' entries):
# 100 kept posts rich in media and formatting take a few MB; a value over this is not one
# this tool wrote, and loading it could take minutes and gigabytes.
MAX_VALUE_BYTES = 16 * 1024 * 1024
# What a missing value reads as, by the type this tool writes.
_MISSING: dict[str, Any] = {"string": None, "zset": [], "hash": {}, "stream": []}
# `show` reads this many of the newest `tg:events` entries (the view shows a channel's 10
# newest among them, `--json` the 50 newest): READ_SCRIPT's COUNT for a stream, its last
# argument.
EVENTS_READ = 1000


class ShowReads(Connection):
    """The reads of `show` and the health check."""

    async def read_all(
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

        One atomic step, so every value comes from the same passes. Before this version's
        first pass only the original keys exist: the first channel falls back to them while
        its own keys are all missing. A value of another type than this tool writes, or over
        MAX_VALUE_BYTES, reads as missing (one line names it).
        """
        wanted = [
            (STATS_KEY, "string"),
            (POSTS_KEY, "string"),
            (LAST_UPDATE_KEY, "string"),
            (STATUS_KEY, "string"),
            (HISTORY_KEY, "zset"),
        ]
        if series:
            wanted.append((POST_HISTORY_KEY, "hash"))
        for name in names:
            keys = channel_keys(name)
            wanted += [(keys.stats, "string"), (keys.posts, "string"), (keys.history, "zset")]
            if series:
                wanted.append((keys.post_history, "hash"))
        if admin_stats:
            wanted += [(admin_stats_key(name), "string") for name in names]
        if events:
            wanted.append((EVENTS_KEY, "stream"))
        stats, posts, last_update, status, history, *rest = await self._read(wanted)
        entries = rest.pop() if events else []
        admin_values = rest[len(rest) - len(names) :] if admin_stats else []
        original = {
            "stats": loads_or_text(stats, STATS_KEY),
            "posts": loads_or_text(posts, POSTS_KEY),
            "history": history_values(history, HISTORY_KEY),
        }
        if series:
            original["post_history"] = series_values(rest.pop(0), POST_HISTORY_KEY)
        per_key = 4 if series else 3
        channels: dict[str, dict[str, Any]] = {}
        for position, name in enumerate(names):
            keys = channel_keys(name)
            values = rest[per_key * position : per_key * (position + 1)]
            own_stats, own_posts, own_history = values[:3]
            if position == 0 and own_stats is None and own_posts is None and not own_history:
                channels[name] = dict(original)
            else:
                channels[name] = {
                    "stats": loads_or_text(own_stats, keys.stats),
                    "posts": loads_or_text(own_posts, keys.posts),
                    "history": history_values(own_history, keys.history),
                }
                if series:
                    channels[name]["post_history"] = series_values(values[3], keys.post_history)
            if admin_stats:
                channels[name]["admin_stats"] = loads_or_text(
                    admin_values[position], admin_stats_key(name)
                )
        view = {
            **original,
            "last_update": last_update,
            "status": loads_or_text(status, STATUS_KEY),
            "channels": channels,
        }
        if events:
            view["events"] = [{"id": i, **fields} for i, fields in entries]
        return view

    async def read_health(self, names: Sequence[str] = ()) -> dict[str, Any]:
        """What `show --check` needs, in one round trip, shaped as `read_all`'s view:
        `last_update`, `status`, and each channel's `stats` (its `collected_at`); never the
        posts, histories or series. The first channel falls back to the original stats as
        in `read_all` (whether its own posts and history exist is asked, not read)."""
        wanted = [(LAST_UPDATE_KEY, "string"), (STATUS_KEY, "string")]
        wanted += [(channel_keys(name).stats, "string") for name in names]
        if names:
            first = channel_keys(names[0])
            wanted += [(STATS_KEY, "string"), (first.posts, "?string"), (first.history, "?zset")]
        last_update, status, *rest = await self._read(wanted)
        stats_values = rest[: len(names)]
        if names and stats_values[0] is None and not any(rest[len(names) + 1 :]):
            stats_values[0] = rest[len(names)]  # the first channel's original stats
            first_stats = STATS_KEY
        else:
            first_stats = channel_keys(names[0]).stats if names else STATS_KEY
        channels = {
            name: {
                "stats": loads_or_text(
                    value, first_stats if position == 0 else channel_keys(name).stats
                )
            }
            for position, (name, value) in enumerate(zip(names, stats_values, strict=True))
        }
        return {
            "last_update": last_update,
            "status": loads_or_text(status, STATUS_KEY),
            "channels": channels,
        }

    async def _read(self, wanted: Sequence[tuple[str, str]]) -> list[Any]:
        """Each (key, type)'s value, in one atomic step: a string, a zset's members, a
        hash's fields (`?type`: whether it exists so). What is of another type, or too
        big, reads as missing, each named in one line."""
        keys = [key for key, _ in wanted]
        kinds = [kind for _, kind in wanted]
        async with self._errors("reading"):
            answers = await self.redis.eval(
                READ_SCRIPT, len(keys), *keys, MAX_VALUE_BYTES, *kinds, EVENTS_READ
            )
        return [
            value_of(key, kind, answer)
            for key, kind, answer in zip(keys, kinds, answers, strict=True)
        ]


def value_of(key: str, kind: str, answer: Sequence[Any]) -> Any:
    """One READ_SCRIPT answer as the value `show` reads; what cannot be read as missing."""
    exists_only = kind.startswith("?")
    kind = kind.removeprefix("?")
    missing = False if exists_only else _MISSING[kind]
    what, *detail = answer
    if what == "ok":
        [value] = detail
        if exists_only:
            return True
        if kind == "hash":
            return dict(zip(value[::2], value[1::2], strict=True))
        if kind == "stream":
            return [(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in value]
        return value
    if what == "type":
        log.warning(
            "%s is a Redis %s, not the %s this tool writes there: read as missing",
            key,
            detail[0],
            kind,
        )
    elif what == "big":
        log.warning(
            "%s holds %s bytes, more than show reads of a value (%d): skipped",
            key,
            detail[0],
            MAX_VALUE_BYTES,
        )
    elif what == "many":
        log.warning("%s holds %s entries, more than show reads: skipped", key, detail[0])
    return missing


def history_values(members: Iterable[str], key: str = "a history") -> list[dict[str, Any]]:
    """A history sorted set's readable points, in its order (oldest first)."""
    return [p for p in (loads_or_text(m, f"{key} member") for m in members) if isinstance(p, dict)]


def series_values(fields: Mapping[str, str], key: str = "a series") -> dict[str, Any]:
    """A post_history hash as post id → its parsed points (unreadable text kept as text),
    newest post first."""

    def order(post_id: str) -> tuple[int, str]:
        return (-int(post_id), "") if is_post_id(post_id) else (1, post_id)

    return {k: loads_or_text(fields[k], f"{key} field {k}") for k in sorted(fields, key=order)}
