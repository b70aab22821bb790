"""`show`'s lines about a channel's statistics for admins (docs/admin-stats.md).

Followers and their change over the period, the total followers per day as a sparkline (the
`growth` graph: `followers` holds who joined and who left), the three best hours to post
(`top_hours`), the top languages and view sources, notifications on; and why they were not
read when last asked. Pure: the view `show` read in, lines of plain text out (every stored
string made safe to print).
"""

from __future__ import annotations

import math
from typing import Any

from itam_tgstats.commands.show import channels_of, human_age, sparkline
from itam_tgstats.escapes import CONTROL_CHARACTERS
from itam_tgstats.store.status import parse_time

# How many hours, languages and sources are named.
TOP = 3


def admin_lines(view: dict[str, Any], name: str | None, *, ascii_only: bool = False) -> list[str]:
    """The lines for the channel `name` (None: the first configured): nothing for a channel
    with no statistics stored and no error."""
    channels = channels_of(view)
    key = name if name is not None else next(iter(channels), None)
    value = channels.get(key, {}).get("admin_stats") if key is not None else None
    lines = value_lines(value, ascii_only=ascii_only) if isinstance(value, dict) else []
    error = _entry(view, key).get("admin_stats_error")
    if isinstance(error, str) and error:
        lines.append(f"admin statistics not read when last asked: {_clean(error)}")
    return lines


def value_lines(value: dict[str, Any], *, ascii_only: bool = False) -> list[str]:
    """A stored `admin_stats` value as lines; what it does not hold (or not readably) is left
    out."""
    graphs, period = _object(value, "graphs"), _object(value, "period")
    start, end = parse_time(period.get("min_date")), parse_time(period.get("max_date"))
    lines = [f"admin statistics from Telegram, read {_clean(value.get('collected_at') or '?')}"]
    followers = _object(value, "followers")
    now, before = _number(followers.get("current")), _number(followers.get("previous"))
    if now is not None:
        line = f"followers {_count(now)}"
        if before is not None and start is not None and end is not None and end > start:
            line += f", {_signed(now - before)} over the period ({human_age(end - start)})"
        lines.append(line)
    lines += _growth(graphs.get("growth"), ascii_only=ascii_only)
    hours = best_hours(graphs.get("top_hours"))
    if hours:
        lines.append("best hours to post (UTC): " + ", ".join(f"{h:02d}:00" for h in hours))
    for label, graph, last in (
        ("languages", graphs.get("languages"), True),
        ("views by source", graphs.get("views_by_source"), False),
    ):
        shares = top_shares(graph, last_point=last)
        if shares:
            lines.append(f"{label}: " + ", ".join(f"{n} {p:.1f}%" for n, p in shares))
    notifications = _number(value.get("enabled_notifications_percent"))
    if notifications is not None:
        lines.append(f"notifications on: {notifications:.1f}% of followers")
    return lines


def best_hours(graph: Any) -> list[int]:
    """The TOP hours of the day (UTC) with the most views in `top_hours`' first series (the
    latest period), best first."""
    values, times = _series(graph)
    hours = [parse_time(t) for t in times]
    found = [(v, int(h // 3600 % 24)) for v, h in zip(values, hours, strict=True) if h is not None]
    ranked = sorted(found, key=lambda pair: (-pair[0], pair[1]))
    return [hour for value, hour in ranked[:TOP] if value > 0]


def top_shares(graph: Any, *, last_point: bool) -> list[tuple[str, float]]:
    """The TOP series of a graph by their share (percent) of all: of the last point (followers
    by language, as of the last day) or of the sum over the graph (views by source)."""
    if not isinstance(graph, dict) or not isinstance(graph.get("series"), list):
        return []
    totals: list[tuple[str, float]] = []
    for line in graph["series"]:
        if not isinstance(line, dict) or not isinstance(line.get("values"), list):
            continue
        numbers = [n for n in map(_number, line["values"]) if n is not None and n > 0]
        if line["values"] and last_point:
            last = _number(line["values"][-1])
            numbers = [last] if last is not None and last > 0 else []
        totals.append((_clean(line.get("name") or line.get("key") or "?"), math.fsum(numbers)))
    whole = math.fsum(t for _, t in totals)
    if whole <= 0:
        return []
    ranked = sorted(totals, key=lambda pair: -pair[1])[:TOP]
    return [(name, total / whole * 100) for name, total in ranked if total > 0]


def _growth(graph: Any, *, ascii_only: bool) -> list[str]:
    if isinstance(graph, dict) and isinstance(graph.get("error"), str):
        return [f"followers graph: {_clean(graph['error'])}"]
    values, times = _series(graph)
    if len(values) < 2:
        return []
    first, last = parse_time(times[0]), parse_time(times[-1])
    span = f" over {human_age(last - first)}" if first is not None and last is not None else ""
    line = sparkline([round(v) for v in values], ascii_only=ascii_only)
    low, high = _count(min(values)), _count(max(values))
    return [f"total followers {line}  {low}..{high}{span} ({len(values)} days)"]


def _series(graph: Any) -> tuple[list[float], list[Any]]:
    """The first series' values of a stored graph with their times (readable ones only)."""
    if not isinstance(graph, dict) or not isinstance(graph.get("x"), list):
        return [], []
    lines = graph.get("series")
    first = lines[0] if isinstance(lines, list) and lines else None
    values = first.get("values") if isinstance(first, dict) else None
    if not isinstance(values, list):
        return [], []
    pairs = [(_number(v), t) for v, t in zip(values, graph["x"], strict=False)]
    kept = [(v, t) for v, t in pairs if v is not None]
    return [v for v, _ in kept], [t for _, t in kept]


def _object(value: dict[str, Any], field: str) -> dict[str, Any]:
    found = value.get(field)
    return found if isinstance(found, dict) else {}


def _entry(view: dict[str, Any], name: str | None) -> dict[str, Any]:
    status = view.get("status")
    entries = status.get("channels") if isinstance(status, dict) else None
    entry = entries.get(name) if isinstance(entries, dict) and name is not None else None
    return entry if isinstance(entry, dict) else {}


def _number(value: Any) -> float | None:
    """A stored number (a bool, a text or a non-finite number is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _signed(value: float) -> str:
    return "0" if value == 0 else ("+" if value > 0 else "-") + _count(abs(value))


def _clean(value: Any) -> str:
    """Stored text as one line that prints as it reads (as the dashboard's `plain`)."""
    return CONTROL_CHARACTERS.sub("\ufffd", " ".join(str(value).split()))
