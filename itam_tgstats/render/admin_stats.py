"""Telegram's statistics for a channel's admins (stats.broadcastStats) as the stored JSON.

Pure functions: raw objects and graph JSON in, the value of `tg:channel:<name>:admin_stats`
out (docs/admin-stats.md, docs/schema/admin-stats.json); no client, no Redis.

A graph comes as JSON in the format of Telegram's chart library: `columns`, each a list
whose first item is its label, one of them the x axis (type `x`, unix times in
milliseconds); `types`, `names` and `colors` by label; and drawing hints (`title`,
`xTickFormatter`, `subchart`, `percentage`, …) that are not kept. A graph that cannot be
read is stored as `{"error": …}` and the other graphs are kept: the JSON is Telegram's,
but nothing in it is trusted (its size, depth and numbers are bounded first).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pyrogram import raw

from itam_tgstats.errors import one_line
from itam_tgstats.escapes import escape_controls
from itam_tgstats.models import iso_utc

# Telegram's graphs by the name stored: the BroadcastStats field is the name + "_graph".
GRAPHS = (
    "growth",
    "followers",
    "mute",
    "top_hours",
    "interactions",
    "iv_interactions",
    "views_by_source",
    "new_followers_by_source",
    "languages",
    "reactions_by_emotion",
    "story_interactions",
    "story_reactions_by_emotion",
)

# The StatsAbsValueAndPrev fields: this period's value and the previous period's.
COUNTERS = (
    "followers",
    "views_per_post",
    "shares_per_post",
    "reactions_per_post",
    "views_per_story",
    "shares_per_story",
    "reactions_per_story",
)

# A graph's JSON is a few kilobytes to a few hundred (a daily series since the channel began);
# anything longer is not a graph.
MAX_GRAPH_JSON = 2_000_000

# Every value a graph holds is read back exactly by JavaScript and by a Go float64.
MAX_NUMBER = 2**53

# The x axis: milliseconds from 1970 up to the last one of year 9999 (what an ISO date holds).
MAX_X_MS = 253_402_300_799_999

# Error texts stored in a graph (Telegram's own, or why a graph could not be read).
ERROR_LIMIT = 200


class UnreadableStats(ValueError):
    """Telegram's answer holds what the stored value cannot (a number that is not finite)."""


class _BadGraph(ValueError):
    """A graph's JSON is not shaped as Telegram's charts are."""


def clean_error(text: str) -> str:
    """An error text as stored: one line, control characters written `\\uXXXX`, cut short."""
    return escape_controls(one_line(text, ERROR_LIMIT))[:ERROR_LIMIT]


def parse_graph_json(data: str) -> dict[str, Any]:
    """Telegram's graph JSON as `{"x": [ISO UTC], "series": [{key, name, type, values}]}`,
    or `{"error": why}` when it is not a graph."""
    try:
        return _parse_graph(data)
    except _BadGraph as e:
        return {"error": clean_error(f"cannot read the graph: {e}")}


def graph_value(graph: Any) -> dict[str, Any] | None:
    """One raw graph as stored: a StatsGraph's parsed JSON; `{"error"}` for a StatsGraphError,
    for JSON that cannot be read and for a token left unloaded; None for no graph."""
    if graph is None:
        return None
    if isinstance(graph, raw.types.StatsGraphError):
        return {"error": clean_error(str(graph.error)) or "Telegram sent an error without a text"}
    if isinstance(graph, raw.types.StatsGraph):
        data = getattr(graph.json, "data", None)
        if not isinstance(data, str):
            return {"error": "cannot read the graph: no JSON"}
        return parse_graph_json(data)
    if isinstance(graph, raw.types.StatsGraphAsync):
        return {"error": "not loaded: Telegram sent a token for stats.loadAsyncGraph"}
    return {"error": clean_error(f"cannot read the graph: Telegram sent {type(graph).__name__}")}


def async_tokens(stats: Any) -> dict[str, str]:
    """Graph name → token, for each graph Telegram sent as a token to load
    (stats.loadAsyncGraph), in GRAPHS order."""
    tokens = {}
    for name in GRAPHS:
        graph = getattr(stats, f"{name}_graph", None)
        if isinstance(graph, raw.types.StatsGraphAsync):
            tokens[name] = graph.token
    return tokens


def admin_stats_value(
    stats: Any, *, collected_at: float, loaded: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A stats.BroadcastStats as the stored value.

    `loaded`: graph name → what stats.loadAsyncGraph answered for that graph's token (used in
    place of the token). Raises UnreadableStats when a number of the overview (a counter, the
    period) is not one JSON can hold; a graph that cannot be read only becomes `{"error"}`.
    """
    if not isinstance(stats, raw.types.stats.BroadcastStats):
        raise UnreadableStats(f"Telegram sent {type(stats).__name__}, not stats.broadcastStats")
    loaded = loaded or {}
    value: dict[str, Any] = {
        "collected_at": iso_utc(collected_at),
        "period": {
            "min_date": iso_utc(_unix_time(stats.period.min_date, "period")),
            "max_date": iso_utc(_unix_time(stats.period.max_date, "period")),
        },
    }
    for name in COUNTERS:
        counter = getattr(stats, name)
        value[name] = {
            "current": _counter(counter.current, name),
            "previous": _counter(counter.previous, name),
        }
    value["enabled_notifications_percent"] = _percent(stats.enabled_notifications)
    value["graphs"] = {
        name: graph_value(loaded.get(name, getattr(stats, f"{name}_graph", None)))
        for name in GRAPHS
    }
    value["recent_posts"] = [
        {
            "id": post.msg_id,
            "views": max(0, post.views),
            "forwards": max(0, post.forwards),
            "reactions": max(0, post.reactions),
        }
        for post in stats.recent_posts_interactions or ()
        # Stories are counted too; the contract keeps the channel's posts only.
        if isinstance(post, raw.types.PostInteractionCountersMessage) and post.msg_id > 0
    ]
    return value


# --- the graph's JSON -----------------------------------------------------------------------


def _parse_graph(data: str) -> dict[str, Any]:
    doc = _load(data)
    columns = doc.get("columns")
    if not isinstance(columns, list) or not columns:
        raise _BadGraph("no columns")
    types = _strings(doc, "types")
    names = _strings(doc, "names")
    x: list[str] | None = None
    series: list[dict[str, Any]] = []
    labels: set[str] = set()
    for column in columns:
        if not isinstance(column, list) or not column or not isinstance(column[0], str):
            raise _BadGraph("a column without a label")
        label, values = column[0], column[1:]
        if label in labels:
            raise _BadGraph(f"two columns labelled {label!r}")
        labels.add(label)
        if types.get(label, "x" if label == "x" else None) != "x":
            series.append(
                {
                    "key": label,
                    "name": names.get(label, label),
                    "type": types.get(label, "line"),
                    "values": [_number(v, label) for v in values],
                }
            )
        elif x is None:
            x = [_time(v) for v in values]
        else:
            raise _BadGraph("two x columns")
    if x is None:
        raise _BadGraph("no x column")
    for line in series:
        if len(line["values"]) != len(x):
            raise _BadGraph(
                f"column {line['key']!r} has {len(line['values'])} values for {len(x)} times"
            )
    return {"x": x, "series": series}


def _load(data: str) -> dict[str, Any]:
    """The JSON object, its size, depth and numbers bounded."""
    if len(data) > MAX_GRAPH_JSON:
        raise _BadGraph(f"its JSON is longer than {MAX_GRAPH_JSON} characters")
    try:
        doc = json.loads(
            data, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except RecursionError:
        raise _BadGraph("its JSON is nested too deeply") from None
    except ValueError as e:  # not JSON, NaN, a number too long or out of range
        raise _BadGraph(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _BadGraph("its JSON is not an object")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _short_int(text: str) -> int:
    # Longer than any number a graph holds: not converted at all (Python refuses past 4300
    # digits anyway, in words meant for programmers).
    if len(text) > 20:
        raise ValueError(f"a number of {len(text)} digits is out of range")
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is out of range")
    return number


def _strings(doc: dict[str, Any], field: str) -> dict[str, str]:
    value = doc.get(field, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _BadGraph(f"{field!r} is not an object of strings")
    return value


def _number(value: Any, label: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadGraph(f"column {label!r} holds {_kind(value)}, not a number")
    if abs(value) > MAX_NUMBER:
        raise _BadGraph(f"column {label!r} holds a number beyond ±2^53")
    return value


def _time(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadGraph(f"the x column holds {_kind(value)}, not milliseconds")
    if not 0 <= value <= MAX_X_MS:
        raise _BadGraph("the x column holds a time before 1970 or after 9999")
    return iso_utc(value // 1000)


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", float: "a fraction", str: "a string", list: "a list"}
    if value is None:
        return "null"
    return kinds.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


# --- the overview ---------------------------------------------------------------------------


def _counter(number: Any, name: str) -> int | float:
    if not isinstance(number, int | float) or not math.isfinite(number):
        raise UnreadableStats(f"Telegram sent {number!r} for {name}, not a finite number")
    return int(number) if float(number).is_integer() else float(number)


def _unix_time(number: Any, name: str) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise UnreadableStats(f"Telegram sent {number!r} in {name}, not a unix time")
    return number


def _percent(value: Any) -> float | None:
    """part / total as a percentage, 0-100, one decimal; None when total is not positive."""
    part, total = value.part, value.total
    if not all(isinstance(n, int | float) and math.isfinite(n) for n in (part, total)):
        return None
    if total <= 0:
        return None
    return round(min(max(float(part) / float(total) * 100, 0.0), 100.0), 1)
