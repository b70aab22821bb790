"""What Redis holds, for a person (`show`), a script (`show --json`) or a health check."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
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


def json_view(view: dict[str, Any], *, ascii_only: bool = False) -> str:
    """`show --json`: the stored values (null where missing), and the history oldest first.

    `ascii_only` escapes what is not ASCII (`\\u0442`), for outputs that cannot carry it.
    """
    keys = ("stats", "posts", "last_update", "status", "history")
    return json.dumps({k: view.get(k) for k in keys}, ensure_ascii=ascii_only, indent=2)


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


def history_points(view: dict[str, Any]) -> list[dict[str, int]]:
    """Readable history points, oldest first."""
    points = [
        p
        for p in view.get("history") or []
        if isinstance(p, dict)
        and isinstance(p.get("t"), int)
        and isinstance(p.get("subscribers"), int)
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
    acted = sum(int(post.get(k) or 0) for k in ("reactions_total", "comments_count", "forwards"))
    return acted / views


def signed(n: int) -> str:
    """`+12`, `-3`, `0`."""
    return f"{n:+d}" if n else "0"


# --- the person's view -------------------------------------------------------------------------

# Control characters (ESC starts terminal sequences: colours, links, a cleared screen) and the
# bidirectional overrides that reorder what is shown.
UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(value: Any) -> str:
    """Stored text as one line that prints as it reads: whitespace runs become one space,
    control characters become U+FFFD."""
    return UNSAFE_CHARACTERS.sub("\ufffd", " ".join(str(value).split()))


def render(
    view: dict[str, Any],
    console: Console,
    interval: int,
    now: float | None = None,
    *,
    ascii_only: bool = False,
) -> None:
    """The person's view: is the channel growing, which posts worked, is the job healthy.

    What Redis holds is data, never markup: everything goes to rich as `Text`.
    """
    # rich loads only for this view: `show --check` and `--json` stay fast.
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    now = time.time() if now is None else now
    stats = view.get("stats") if isinstance(view.get("stats"), dict) else None
    if stats is None:
        console.print(Text("No data yet: `tgstats collect` has not written tg:channel:stats."))
    else:
        name = f"@{stats['username']}" if stats.get("username") else str(stats.get("channel_id"))
        console.print(Text.assemble((plain(stats.get("title", "")), "bold"), f"  {plain(name)}"))
        growth = Text(f"subscribers {plain(stats.get('subscribers_count'))}")
        for d in deltas(history_points(view)):
            label = f"since first point {human_age(d.span)} ago" if d.since_first_point else d.label
            style = "green" if d.change > 0 else "red" if d.change < 0 else ""
            growth.append("   ")
            growth.append(f"{signed(d.change)} {label}", style=style)
        console.print(growth)
        points = history_points(view)
        if len(points) >= 2:
            values = [p["subscribers"] for p in points]
            span = human_age(points[-1]["t"] - points[0]["t"])
            console.print(
                Text(
                    f"{sparkline(values, ascii_only=ascii_only)}  "
                    f"{min(values)}..{max(values)} over {span}, {len(points)} points"
                )
            )
        elif not points:
            console.print(Text("no history yet: growth shows after two passes"))
        console.print(
            Text(
                f"messages {plain(stats.get('posts_count'))}   "
                f"last post {plain(stats.get('last_post_date') or '-')}"
            )
        )
    fresh, line = check_freshness(view, interval, now)
    console.print(Text(f"health: {line}", style="green" if fresh else "bold red"))
    _render_status(view.get("status"), console, fresh, Text)
    posts = view.get("posts")
    if isinstance(posts, list) and posts:
        console.print(_posts_table(posts, now, ascii_only, Table, Text))
    elif isinstance(posts, list):
        console.print(Text("no posts in the channel"))


def _render_status(status: Any, console: Console, fresh: bool, text: Any) -> None:
    if not isinstance(status, dict):
        return
    style = "" if fresh else "red"
    parts = [f"last success {plain(status.get('last_success_at') or 'never')}"]
    if status.get("last_failure_at"):
        parts.append(
            f"last failure {plain(status['last_failure_at'])}: {plain(status.get('last_error'))}"
        )
    if status.get("consecutive_failures"):
        parts.append(f"{plain(status['consecutive_failures'])} failed passes in a row")
    if status.get("retry_after"):
        parts.append(f"Telegram asked to wait until {plain(status['retry_after'])}")
    for label, part in zip(["status:", *[""] * (len(parts) - 1)], parts, strict=True):
        console.print(text(f"{label:<8}{part}", style=style))


def _posts_table(
    posts: list[Any], now: float, ascii_only: bool, table_class: Any, text_class: Any
) -> Any:
    rates = [engagement(p) if isinstance(p, dict) else None for p in posts]
    known = [r for r in rates if r is not None]
    best = max(known) if known else None
    table = table_class(box=None, header_style="bold")
    columns = (
        ("", "left"), ("id", "right"), ("age", "right"), ("views", "right"),
        ("reactions", "right"), ("comments", "right"), ("forwards", "right"),
        ("engagement", "right"), ("media", "left"), ("text", "left"),
    )  # fmt: skip
    for column, justify in columns:
        # "…" marks a cut cell; plain output folds it onto the next line instead.
        table.add_column(column, justify=justify, overflow="fold" if ascii_only else "ellipsis")
    for post, rate in zip(posts, rates, strict=True):
        if not isinstance(post, dict):
            continue
        posted = parse_time(post.get("date"))
        text = plain(post.get("text", ""))
        is_best = best is not None and rate == best
        cells = (
            ("*" if ascii_only else "★") if is_best else "",
            plain(post.get("id")),
            human_age(now - posted) if posted is not None else "?",
            plain(post.get("views")),
            plain(post.get("reactions_total")),
            plain(post.get("comments_count")),
            plain(post.get("forwards")),
            f"{rate:.1%}" if rate is not None else "-",
            plain(post.get("media_type") or ""),
            text[:40] + ("..." if ascii_only else "…") * (len(text) > 40),
        )
        # Text, not str: a cell given as str would be read as rich markup.
        table.add_row(*map(text_class, cells), style="bold" if is_best else None)
    return table
