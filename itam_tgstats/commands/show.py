"""What Redis holds, for a person (`show`), a script (`show --json`) or a health check."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itam_tgstats import escapes
from itam_tgstats.config import Settings, channel_key_name, parse_channel, shown
from itam_tgstats.errors import ConfigError, one_line
from itam_tgstats.models import iso_utc
from itam_tgstats.store import Store
from itam_tgstats.store.status import CLOCK_SKEW, LATEST_TIME, parse_time


async def read_view(
    settings: Settings,
    *,
    series: bool = False,
    admin_stats: bool = False,
    events: bool = False,
    check: bool = False,
) -> dict[str, Any]:
    """Everything `show` displays for the configured channels, read in one round trip;
    with `series`, the posts' series too (`--json`, `--post`); with `admin_stats`, each
    channel's statistics for admins; with `events`, the newest entries of `tg:events`; with
    `check`, only what the health check needs (no posts, histories, series, statistics nor
    events)."""
    store = Store(settings.redis_url)
    try:
        names = [channel_key_name(c) for c in settings.channels]
        if check:
            return await store.read_health(names)
        return await store.read_all(names, series=series, admin_stats=admin_stats, events=events)
    finally:
        await store.aclose()


def select_channel(configured: Sequence[str], wanted: str | None) -> str:
    """The key name of the channel `show --channel` details (default: the first configured).

    Any spelling TG_CHANNEL_USERNAME accepts, case-insensitive; ConfigError when `wanted`
    is not one of the configured channels.
    """
    names = [channel_key_name(c) for c in configured]
    if wanted is None:
        return names[0]
    username = parse_channel(wanted)
    if username is None or channel_key_name(username) not in names:
        listed = ", ".join(f"@{n}" for n in names)
        raise ConfigError(
            f"--channel {shown(wanted)} is not a configured channel "
            f"(TG_CHANNEL_USERNAME names {listed})"
        )
    return channel_key_name(username)


def channels_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The configured channels' `{"stats", "posts", "history"}` by key name, in order."""
    channels = view.get("channels")
    if not isinstance(channels, dict):
        return {}
    return {k: v for k, v in channels.items() if isinstance(k, str) and isinstance(v, dict)}


def several(view: dict[str, Any]) -> bool:
    """Whether several channels are configured (one channel: everything as in version 1)."""
    return len(channels_of(view)) > 1


# What each channel's entry of the view holds (`post_history` only when read).
CHANNEL_VALUES = ("stats", "posts", "history", "post_history", "admin_stats")


def channel_detail(view: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The view `render` details for one channel, shaped like the original one.

    The first channel (`name` None or the first) is the original view: its freshness is
    `tg:last_update`, its status the pass's. Another channel's freshness is its stats'
    `collected_at`; its status, its entry in `tg:status.channels`.
    """
    channels = channels_of(view)
    names = list(channels)
    if not names or name is None or name == names[0]:
        own = channels[names[0]] if names else view
        return {**view, **{k: own.get(k) for k in CHANNEL_VALUES}}
    own = channels.get(name, {})
    stats = own.get("stats")
    status = view.get("status")
    entries = status.get("channels") if isinstance(status, dict) else None
    entry = entries.get(name) if isinstance(entries, dict) else None
    return {
        "name": name,
        "stats": stats,
        "posts": own.get("posts"),
        "history": own.get("history"),
        "post_history": own.get("post_history"),
        "admin_stats": own.get("admin_stats"),
        "last_update": stats.get("collected_at") if isinstance(stats, dict) else None,
        "status": entry if isinstance(entry, dict) else None,
    }


def human_age(seconds: float) -> str:
    """`42 s`, `15 min`, `3 h 5 min`, `2 d 4 h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def check_freshness(view: dict[str, Any], interval: int, now: float) -> tuple[bool, str]:
    """(fresh, one line) for `show --check`: stale after 2 × TG_UPDATE_INTERVAL, or when
    the update time is ahead of this clock (by more than CLOCK_SKEW).

    One channel configured: the age of `tg:last_update`. Several: fresh only when every
    channel's last success (its stats' `collected_at`) is; the line names the stale ones.
    A stale line ends with the reason `tg:status` gives (see `stale_reason`). Control and
    format characters are escaped: the line quotes stored text.
    """
    if several(view):
        channels = channels_of(view)
        fresh, line = check_channels(channels, interval, now)
        updated = any(collected_at(c) is not None for c in channels.values())
    else:
        missing = "no successful update recorded (tg:last_update is missing)"
        fresh, line = check_update(view.get("last_update"), interval, now, missing=missing)
        updated = parse_time(view.get("last_update")) is not None
    if not fresh:
        line = f"{line}; {stale_reason(view.get('status'), now, updated=updated)}"
    return fresh, escapes.escape_controls(one_line(line, 2000))


def stale_reason(status: Any, now: float, *, updated: bool) -> str:
    """Why the data is not fresh, from `tg:status`: the newest failure (its time, exit code
    and error line); or that no pass ran since the last success; or that none has run yet.
    `updated`: some update time is recorded (so some pass did run)."""
    if not isinstance(status, dict):
        if updated:
            return "no pass has recorded its outcome (tg:status is missing)"
        return "no pass has run yet"
    if status.get("ok") is True:
        succeeded = parse_time(status.get("last_success_at"))
        if succeeded is None:
            return "no pass has run since the last success"
        return f"no pass has run since the last success at {iso_utc(succeeded)}"
    reason = "last pass failed"
    failed = parse_time(status.get("last_failure_at"))
    if failed is not None:
        reason += f" at {iso_utc(failed)}"
        if failed <= now:
            reason += f" ({human_age(now - failed)} ago)"
    code = status.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool):
        reason += f", exit {code}"
    error = status.get("last_error")
    if isinstance(error, str) and error.strip():
        reason += f": {error}"
    return reason


def check_update(value: Any, interval: int, now: float, *, missing: str) -> tuple[bool, str]:
    """(fresh, one line) for one stored update time; `missing` says what is missing."""
    updated = parse_time(value)
    if updated is None:
        return False, f"stale: {missing}"
    age = now - updated
    limit = 2 * interval
    if age < -CLOCK_SKEW:
        return False, (
            f"stale: last update {iso_utc(updated)} is ahead of this clock by "
            f"{human_age(-age)} (limit {human_age(limit)})"
        )
    if age > limit:
        return False, f"stale: last update {human_age(age)} ago (limit {human_age(limit)})"
    return True, f"ok: last update {human_age(age)} ago"


def collected_at(channel: dict[str, Any]) -> float | None:
    """When a channel was last read: its stats' `collected_at`."""
    stats = channel.get("stats")
    return parse_time(stats.get("collected_at")) if isinstance(stats, dict) else None


def check_channels(
    channels: dict[str, dict[str, Any]], interval: int, now: float
) -> tuple[bool, str]:
    """(fresh, one line): fresh when every channel was read within 2 × the interval (and
    not ahead of this clock)."""
    limit = 2 * interval
    stale: list[str] = []
    ages: list[tuple[float, str]] = []
    for name, channel in channels.items():
        updated = collected_at(channel)
        if updated is None:
            stale.append(f"@{name} never")
        elif updated - now > CLOCK_SKEW:
            stale.append(f"@{name} last updated {iso_utc(updated)}, ahead of this clock")
        elif now - updated > limit:
            stale.append(f"@{name} last updated {human_age(now - updated)} ago")
        else:
            ages.append((now - updated, name))
    if stale:
        return False, f"stale: {', '.join(stale)} (limit {human_age(limit)})"
    oldest, name = max(ages)
    return True, f"ok: {len(ages)} channels, oldest update {human_age(oldest)} ago (@{name})"


def json_view(view: dict[str, Any], *, ascii_only: bool = False) -> str:
    """`show --json`: the stored values (null where missing), and the history oldest first.

    The original keys describe the first channel; `channels` gives every configured
    channel's `{"stats", "posts", "history", "post_history", "admin_stats"}` by key name
    (the first one's too); `post_history` maps each post id to its series (read with
    `series`); `admin_stats`, the channel's statistics for admins (null: none stored);
    `events`: the newest JSON_EVENTS entries of `tg:events`, oldest first.
    Control characters are escaped (`\\u009b`); `ascii_only` escapes what is not ASCII too
    (`\\u0442`), for outputs that cannot carry it.
    """
    keys = ("stats", "posts", "last_update", "status", "history", "post_history")
    data = {k: view.get(k) for k in keys}
    data["channels"] = {
        name: {k: channel.get(k) for k in CHANNEL_VALUES}
        for name, channel in channels_of(view).items()
    }
    data["events"] = events_of(view)[:JSON_EVENTS][::-1]
    return escapes.dumps(data, ascii_only=ascii_only)


# `show --json` gives the newest 50 entries of `tg:events` (oldest first, as the stream
# holds them); the view, a channel's newest 10.
JSON_EVENTS = 50
VIEW_EVENTS = 10


def events_of(view: dict[str, Any], channel: str | None = None) -> list[dict[str, Any]]:
    """The entries of `tg:events` read, newest first: all, or `channel`'s."""
    found = view.get("events")
    entries = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
    return [e for e in entries if channel is None or e.get("channel") == channel]


# --- growth ------------------------------------------------------------------------------------

WINDOWS = (("24 h", 86_400), ("7 d", 7 * 86_400), ("30 d", 30 * 86_400))
UNICODE_LEVELS = "▁▂▃▄▅▆▇█"
ASCII_LEVELS = "_.-~=+*#"


@dataclass(frozen=True)
class Delta:
    """Subscribers gained (negative: lost) over a window, or since the first point."""

    label: str
    change: int
    since_first_point: bool
    span: float  # seconds the change covers


def history_points(view: dict[str, Any], now: float | None = None) -> list[dict[str, int]]:
    """Readable history points, oldest first; none ahead of the clock (`now`, default the
    current time) by more than CLOCK_SKEW: the newest point is what changes are measured
    from, and a point in 2100 is no pass's."""
    latest = (time.time() if now is None else now) + CLOCK_SKEW
    points = [
        p
        for p in view.get("history") or []
        if isinstance(p, dict)
        and isinstance(p.get("t"), int)
        and isinstance(p.get("subscribers"), int)
        and p["t"] <= latest
    ]
    return sorted(points, key=lambda p: p["t"])


def deltas(points: list[dict[str, int]]) -> list[Delta]:
    """Change over 24 h, 7 d and 30 d before the newest point; where the history is shorter,
    the change since the first point, said once."""
    if len(points) < 2:
        return []
    newest = points[-1]
    result: list[Delta] = []
    for label, seconds in WINDOWS:
        start = newest["t"] - seconds
        before = [p for p in points if p["t"] <= start]
        if before:
            base = before[-1]
            result.append(Delta(label, newest["subscribers"] - base["subscribers"], False, seconds))
        else:
            first = points[0]
            result.append(
                Delta(
                    label,
                    newest["subscribers"] - first["subscribers"],
                    True,
                    newest["t"] - first["t"],
                )
            )
            break  # longer windows would say the same
    return result


def sparkline(values: list[int], width: int = 60, *, ascii_only: bool = False) -> str:
    """One line of block characters, oldest left; at most `width` wide (averaged buckets)."""
    if not values:
        return ""
    levels = ASCII_LEVELS if ascii_only else UNICODE_LEVELS
    if len(values) > width:
        buckets = [
            values[i * len(values) // width : (i + 1) * len(values) // width] for i in range(width)
        ]
        values_f = [sum(b) / len(b) for b in buckets]
    else:
        values_f = [float(v) for v in values]
    low, high = min(values_f), max(values_f)
    if high == low:
        return levels[len(levels) // 2 - 1] * len(values_f)
    top = len(levels) - 1
    return "".join(levels[round((v - low) / (high - low) * top)] for v in values_f)


def engagement(post: dict[str, Any]) -> float | None:
    """(reactions + comments + forwards) / views; None without views."""
    views = post.get("views")
    if not isinstance(views, int) or views <= 0:
        return None
    counts = [post.get(k) for k in ("reactions_total", "comments_count", "forwards")]
    # Redis may hold anything: only counters that are numbers count.
    acted = sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool))
    return acted / views


def signed(n: int) -> str:
    """`+12`, `-3`, `0`."""
    return f"{n:+d}" if n else "0"


def post_series(view: dict[str, Any], name: str | None, post_id: int) -> list[dict[str, int]]:
    """`show --post`: the readable points of a post's series (oldest first), in the channel
    `name` (None: the first); ConfigError when it has none."""
    detail = channel_detail(view, name)
    series = detail.get("post_history")
    points = series.get(str(post_id)) if isinstance(series, dict) else None
    readable = [
        p
        for p in (points if isinstance(points, list) else [])
        if isinstance(p, dict)
        and all(isinstance(p.get(k), int) for k in ("t", "views"))
        and 0 <= p["t"] <= LATEST_TIME
    ]
    if not readable:
        where = f"@{name}" if name else "the first channel"
        raise ConfigError(
            f"post {post_id} of {where} has no series (only posts kept or younger than "
            "TG_POST_HISTORY_DAYS have one)"
        )
    return sorted(readable, key=lambda p: p["t"])
