"""`tgstats show` for a person, drawn with rich: the channels in a line each, one in detail."""

from __future__ import annotations

from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from itam_tgstats.commands.admin_view import admin_lines
from itam_tgstats.commands.show import (
    VIEW_EVENTS,
    channel_detail,
    channels_of,
    check_update,
    deltas,
    engagement,
    events_of,
    history_points,
    human_age,
    signed,
    sparkline,
)
from itam_tgstats.escapes import CONTROL_CHARACTERS
from itam_tgstats.models import iso_utc
from itam_tgstats.store.status import parse_time

# Control characters (ESC and the 8-bit CSI U+009B start terminal sequences: colours, links,
# a cleared screen) and the bidi and format controls that reorder what is shown.
UNSAFE_CHARACTERS = CONTROL_CHARACTERS


def plain(value: Any) -> str:
    """Stored text as one line that prints as it reads: whitespace runs become one space,
    control characters become U+FFFD."""
    return UNSAFE_CHARACTERS.sub("\ufffd", " ".join(str(value).split()))


def render(
    view: dict[str, Any],
    console: Console,
    interval: int,
    now: float,
    *,
    ascii_only: bool = False,
    channel: str | None = None,
) -> None:
    """Every configured channel in a line, then `channel`'s detail (default: the first
    channel's).

    What Redis holds is data, never markup: everything goes to rich as `Text`.
    """
    console.print(channels_table(view, now, ascii_only=ascii_only))
    console.print()
    detail = channel_detail(view, channel)
    name = detail.get("name")
    stats = detail.get("stats") if isinstance(detail.get("stats"), dict) else None
    if stats is None:
        where = f"tg:channel:{name}:stats" if name else "tg:channel:stats"
        console.print(Text(f"No data yet: `tgstats collect` has not written {where}."))
    else:
        _render_stats(detail, stats, console, ascii_only=ascii_only)
    if name is None:
        missing = "no successful update recorded (tg:last_update is missing)"
    else:
        missing = f"no successful update of @{name} recorded"
    fresh, line = check_update(detail.get("last_update"), interval, now, missing=missing)
    console.print(Text(f"health: {line}", style="green" if fresh else "bold red"))
    if name is None:
        _render_status(detail.get("status"), console, fresh, now)
    else:
        _render_channel_status(detail.get("status"), console, fresh, now)
    for line in admin_lines(view, channel, ascii_only=ascii_only):
        console.print(Text(line))  # Text: stored names are data, never markup
    posts = detail.get("posts")
    if isinstance(posts, list) and posts:
        console.print(_posts_table(posts, now, ascii_only=ascii_only))
    elif isinstance(posts, list):
        console.print(Text("no posts in the channel"))
    names = list(channels_of(view))
    channel_name = name or (names[0] if names else "")
    recent = events_of(view, channel_name)[:VIEW_EVENTS]
    if recent:
        console.print(Text(f"last events of @{plain(channel_name)} (newest first)"))
        console.print(events_table(recent, ascii_only=ascii_only))


def events_table(events: list[dict[str, Any]], *, ascii_only: bool = False) -> Table:
    """A channel's entries of `tg:events`: time, type, post, and what changed or failed."""
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "event", "post", "detail"):
        table.add_column(column, overflow="fold" if ascii_only else "ellipsis")
    for event in events:
        detail = event.get("changed") or event.get("error") or ""
        cells = (event.get("at", "?"), event.get("type", "?"), event.get("post_id", "-"), detail)
        # Text, not str: a cell given as str would be read as rich markup.
        table.add_row(*(Text(plain(c)) for c in cells))
    return table


def channels_table(view: dict[str, Any], now: float, *, ascii_only: bool = False) -> Table:
    """One row per configured channel: subscribers, their 24 h change, the age of the last
    post, and whether the last pass read it (or its error)."""
    status = view.get("status")
    entries = status.get("channels") if isinstance(status, dict) else None
    entries = entries if isinstance(entries, dict) else {}
    table = Table(box=None, header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("channel", "left"), ("subscribers", "right"), ("24 h", "right"),
        ("last post", "right"), ("status", "left"),
    )  # fmt: skip
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold" if ascii_only else "ellipsis")
    for name, channel in channels_of(view).items():
        stats = channel.get("stats") if isinstance(channel.get("stats"), dict) else None
        state, style = channel_state(entries.get(name), now)
        cells = (
            f"@{name}",
            plain(stats.get("subscribers_count")) if stats else "-",
            day_change(channel),
            last_post_age(stats, now),
            state,
        )
        # Text, not str: a cell given as str would be read as rich markup.
        table.add_row(*map(Text, cells[:-1]), Text(cells[-1], style=style))
    return table


def day_change(channel: dict[str, Any]) -> str:
    """Subscribers gained over the 24 h before the newest point (`+3 in 5 h` when the
    history is shorter); `-` without two points."""
    found = deltas(history_points(channel))
    if not found:
        return "-"
    day = found[0]
    if day.since_first_point:
        return f"{signed(day.change)} in {human_age(day.span)}"
    return signed(day.change)


def last_post_age(stats: dict[str, Any] | None, now: float) -> str:
    """`3 h ago`; `none` for an empty channel; `-` when the channel was never read."""
    if stats is None:
        return "-"
    posted = parse_time(stats.get("last_post_date"))
    if posted is None:
        return "none" if stats.get("last_post_date") is None else "?"
    return f"{human_age(now - posted)} ago"


def channel_state(entry: Any, now: float) -> tuple[str, str]:
    """(`ok` or `error: …`, its style) from a channel's entry in `tg:status.channels`;
    a channel left alone after failing on its own says when it is asked again."""
    if not isinstance(entry, dict):
        return "-", ""
    if entry.get("ok") is True:
        return "ok", "green"
    retry = next_try(entry, now)
    later = f" ({retry})" if retry else ""
    return f"error: {plain(entry.get('last_error') or 'unknown')}{later}", "red"


def next_try(entry: Any, now: float) -> str | None:
    """`next try 2025-01-07T13:00:00+00:00, in 45 min` while a channel's backoff runs."""
    retry_at = parse_time(entry.get("retry_after")) if isinstance(entry, dict) else None
    if retry_at is None or retry_at <= now:
        return None
    return f"next try {plain(entry['retry_after'])}, in {human_age(retry_at - now)}"


def _render_stats(
    view: dict[str, Any], stats: dict[str, Any], console: Console, *, ascii_only: bool
) -> None:
    name = f"@{stats['username']}" if stats.get("username") else str(stats.get("channel_id"))
    console.print(Text.assemble((plain(stats.get("title", "")), "bold"), f"  {plain(name)}"))
    growth = Text(f"subscribers {plain(stats.get('subscribers_count'))}")
    points = history_points(view)
    for d in deltas(points):
        label = f"since first point {human_age(d.span)} ago" if d.since_first_point else d.label
        style = "green" if d.change > 0 else "red" if d.change < 0 else ""
        growth.append("   ")
        growth.append(f"{signed(d.change)} {label}", style=style)
    console.print(growth)
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


def _print_labelled(console: Console, parts: list[str], style: str) -> None:
    """`status:`, then each part on a line of its own, 8 columns in: a part that wraps keeps
    the indent on its next lines."""
    width = max(console.width - 8, 20)
    for label, part in zip(["status:", *[""] * (len(parts) - 1)], parts, strict=True):
        for i, line in enumerate(Text(part).wrap(console, width)):
            head = label if i == 0 else ""
            console.print(Text(f"{head:<8}{line.plain.rstrip()}", style=style))


def _render_status(status: Any, console: Console, fresh: bool, now: float) -> None:
    """The pass's status (`tg:status`), for the first channel."""
    if not isinstance(status, dict):
        return
    parts = [f"last success {plain(status.get('last_success_at') or 'never')}"]
    if status.get("last_failure_at"):
        parts.append(
            f"last failure {plain(status['last_failure_at'])}: {plain(status.get('last_error'))}"
        )
    if status.get("consecutive_failures"):
        count = status["consecutive_failures"]
        passes = "pass" if count == 1 else "passes"
        parts.append(f"{plain(count)} failed {passes} in a row")
    if status.get("retry_after"):
        parts.append(f"Telegram asked to wait until {plain(status['retry_after'])}")
    # One channel: its own backoff, if it runs, is the pass's story too.
    entries = status.get("channels")
    if isinstance(entries, dict) and len(entries) == 1:
        retry = next_try(next(iter(entries.values())), now)
        if retry:
            parts.append(f"channel left alone after failing on its own: {retry}")
    _print_labelled(console, parts, "" if fresh else "red")


def _render_channel_status(entry: Any, console: Console, fresh: bool, now: float) -> None:
    """Another channel's entry in `tg:status.channels`."""
    if not isinstance(entry, dict):
        return
    parts = [f"last success {plain(entry.get('last_success_at') or 'never')}"]
    if entry.get("ok") is not True:
        parts.append(f"last error: {plain(entry.get('last_error') or 'unknown')}")
    retry = next_try(entry, now)
    if retry:
        parts.append(retry)
    _print_labelled(console, parts, "" if fresh and entry.get("ok") is True else "red")


def _posts_table(posts: list[Any], now: float, *, ascii_only: bool) -> Table:
    rates = [engagement(p) if isinstance(p, dict) else None for p in posts]
    known = [r for r in rates if r is not None]
    # A star marks the one post with the best engagement: none for a tie or when nobody acted.
    best = max(known) if known else None
    if best is not None and (best <= 0 or known.count(best) > 1):
        best = None
    table = Table(box=None, header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("", "left"), ("id", "right"), ("age", "right"), ("views", "right"),
        ("24 h views", "right"), ("reactions", "right"), ("comments", "right"),
        ("forwards", "right"),
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
            plain(post["views_24h"]) if isinstance(post.get("views_24h"), int) else "-",
            plain(post.get("reactions_total")),
            plain(post.get("comments_count")),
            plain(post.get("forwards")),
            f"{rate:.1%}" if rate is not None else "-",
            plain(post.get("media_type") or ""),
            text[:40] + ("..." if ascii_only else "…") * (len(text) > 40),
        )
        # Text, not str: a cell given as str would be read as rich markup.
        table.add_row(*map(Text, cells), style="bold" if is_best else None)
    return table


def render_post(
    points: list[dict[str, int]],
    console: Console,
    *,
    post_id: int,
    channel: str,
    ascii_only: bool = False,
) -> None:
    """`show --post`: a post's views over time as a sparkline, then its points."""
    views = [p["views"] for p in points]
    span = human_age(points[-1]["t"] - points[0]["t"])
    console.print(Text(f"post {post_id} of @{plain(channel)}: {len(points)} points over {span}"))
    console.print(
        Text(f"views {sparkline(views, ascii_only=ascii_only)}  {min(views)}..{max(views)}")
    )
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "views", "reactions", "forwards", "comments"):
        table.add_column(column, justify="left" if column.startswith("time") else "right")
    for p in points:
        cells = [iso_utc(p["t"]), *(plain(p.get(k, "-")) for k in POINT_COUNTS)]
        table.add_row(*map(Text, cells))
    console.print(table)


POINT_COUNTS = ("views", "reactions", "forwards", "comments")
