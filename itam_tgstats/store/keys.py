"""Every Redis key name this tool writes, and how values are encoded."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

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


# Nothing this tool writes nests deeper than a few levels (posts → a post → its media → an
# item); a value nested deeper is not ours, and past ~1,000 levels json.loads, and every
# reader walking it, raises RecursionError.
MAX_DEPTH = 32


def loads_or_text(value: str | None, key: str = "a value") -> Any:
    """A stored JSON value, or the text itself when it is not JSON (shown, never fatal; one
    warning names `key`).

    A value nested deeper than MAX_DEPTH reads as missing (None), with one warning naming
    `key` (what holds it: a key, a member or a field of one): such data is not this tool's,
    and whatever walks it would fail. The pass overwrites what it writes.
    """
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        log.warning("%s is not JSON, so not written by this tool: read as text", key)
        return value
    except RecursionError:
        data = None
    else:
        if not too_deep(data, value):
            return data
    log.warning(
        "%s holds JSON nested deeper than %d levels, not written by this tool: read as missing",
        key,
        MAX_DEPTH,
    )
    return None


def too_deep(data: Any, text: str = "") -> bool:
    """Whether parsed JSON nests more than MAX_DEPTH arrays and objects deep. `text`, its
    source, when given, skips the walk for values with too few brackets to be that deep."""
    if not isinstance(data, dict | list) or (
        text and text.count("[") + text.count("{") <= MAX_DEPTH
    ):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False
