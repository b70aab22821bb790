"""What Redis holds, for a person (`show`), a script (`show --json`) or a health check."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from itam_tgstats.config import Settings
from itam_tgstats.store import Store

if TYPE_CHECKING:
    from rich.console import Console


async def read_view(settings: Settings) -> dict[str, Any]:
    """Everything `show` displays, read in one round trip."""
    store = Store(settings.redis_url)
    try:
        return await store.read_all()
    finally:
        await store.aclose()


def parse_time(value: Any) -> float | None:
    """A stored ISO time as a unix time; None when missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


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
    """(fresh, one line) for `show --check`: stale after 2 × TG_UPDATE_INTERVAL."""
    updated = parse_time(view.get("last_update"))
    if updated is None:
        return False, "stale: no successful update recorded (tg:last_update is missing)"
    age = now - updated
    limit = 2 * interval
    if age > limit:
        return False, f"stale: last update {human_age(age)} ago (limit {human_age(limit)})"
    return True, f"ok: last update {human_age(age)} ago"


def json_view(view: dict[str, Any]) -> str:
    """`show --json`: the stored values, null where a key is missing."""
    keys = ("stats", "posts", "last_update", "status")
    return json.dumps({k: view.get(k) for k in keys}, ensure_ascii=False, indent=2)


def render(view: dict[str, Any], console: Console, interval: int, now: float | None = None) -> None:
    """The person's view: channel, subscribers, age of the last update, the posts."""
    # rich loads only for this view: `show --check` and `--json` stay fast.
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    now = time.time() if now is None else now
    stats = view.get("stats") if isinstance(view.get("stats"), dict) else None
    if stats is None:
        console.print("No data yet: `tgstats collect` has not written tg:channel:stats.")
    else:
        name = f"@{stats['username']}" if stats.get("username") else str(stats.get("channel_id"))
        console.print(Text.assemble((str(stats.get("title", "")), "bold"), f"  {name}"))
        console.print(
            f"subscribers {stats.get('subscribers_count')}   "
            f"messages {stats.get('posts_count')}   "
            f"last post {stats.get('last_post_date') or '-'}"
        )
    fresh, line = check_freshness(view, interval, now)
    console.print(Text(f"last update: {line}", style="green" if fresh else "red"))
    status = view.get("status")
    if isinstance(status, dict) and not status.get("ok"):
        console.print(
            Text(
                f"last pass failed ({status.get('consecutive_failures')} in a row): "
                f"{status.get('last_error')}",
                style="red",
            )
        )
    posts = view.get("posts")
    if isinstance(posts, list) and posts:
        table = Table(box=None, header_style="bold")
        for column, justify in (
            ("id", "right"),
            ("date", "left"),
            ("views", "right"),
            ("reactions", "right"),
            ("comments", "right"),
            ("forwards", "right"),
            ("media", "left"),
            ("text", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for post in posts:
            if not isinstance(post, dict):
                continue
            text = " ".join(str(post.get("text", "")).split())
            table.add_row(
                str(post.get("id")),
                str(post.get("date", ""))[:16].replace("T", " "),
                str(post.get("views")),
                str(post.get("reactions_total")),
                str(post.get("comments_count")),
                str(post.get("forwards")),
                str(post.get("media_type") or ""),
                text[:40] + ("…" if len(text) > 40 else ""),
            )
        console.print(table)
