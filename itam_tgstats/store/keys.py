"""Every Redis key name this tool writes, and how values are encoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The original worker's keys: the Go API reads these.
STATS_KEY = "tg:channel:stats"
POSTS_KEY = "tg:channel:posts"
LAST_UPDATE_KEY = "tg:last_update"
# Ours.
STATUS_KEY = "tg:status"
HISTORY_KEY = "tg:channel:history"
POST_HISTORY_KEY = "tg:channel:post_history"
ADMIN_STATS_KEY = "tg:channel:admin_stats"
LOCK_KEY = "tg:lock"
PEER_KEY_PREFIX = "tg:peer:"
MEDIA_KEY_PREFIX = "tg:media:"

CHANNELS_KEY = "tg:channels"
# A Redis Stream: what each pass changed (see store/events.py).
EVENTS_KEY = "tg:events"

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


def admin_stats_key(name: str) -> str:
    """`tg:channel:<name>:admin_stats`: the channel's statistics for admins, when read."""
    return f"tg:channel:{name}:admin_stats"


def channel_keys(name: str) -> ChannelKeys:
    """`tg:channel:<name>:stats|posts|history|post_history` for a channel's key name."""
    prefix = f"tg:channel:{name}:"
    return ChannelKeys(
        f"{prefix}stats", f"{prefix}posts", f"{prefix}history", f"{prefix}post_history"
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
