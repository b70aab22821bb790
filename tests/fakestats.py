"""A channel's statistics as Telegram sends them to its admins (fake numbers throughout).

`realistic_stats()` builds a stats.broadcastStats with all twelve graphs in the shapes
Telegram's chart JSON takes (a daily series with a zoom token, joined/left lines, the hours
of a day against the week before, stacked bars by source, a percentage area of languages,
bars by reaction), two of them sent as tokens to load with stats.loadAsyncGraph and one as a
statsGraphError. `FakeStats` is what the stand-in Telegram (faketg.py) answers with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pyrogram import raw

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Graphs end on 2025-01-06 (00:00 UTC); the overview's period is the week up to 2025-01-07.
LAST_DAY_MS = 1_736_121_600_000
PERIOD = (1_735_689_600, 1_736_294_400)  # 2025-01-01 → 2025-01-08, 00:00 UTC

# The graphs Telegram sends as tokens here, and the one it sends as an error.
ASYNC_GRAPHS = ("views_by_source", "languages")
ERROR_GRAPH = "iv_interactions"
ERROR_TEXT = "Not enough data to display."
ZOOM_GRAPH = "growth"

RECENT_POSTS = ((1205, 2100, 31, 87), (1204, 3400, 52, 140), (1203, 1800, 12, 40))


@dataclass
class FakeStats:
    """What stats.getBroadcastStats answers for one channel, and where.

    `dc_id`: the data center that keeps them (asked elsewhere: STATS_MIGRATE_<dc_id>);
    `async_graphs`: token → what stats.loadAsyncGraph answers for it on that data center.
    """

    answer: raw.types.stats.BroadcastStats
    dc_id: int = 2
    async_graphs: dict[str, Any] = field(default_factory=dict)


def days(count: int) -> list[int]:
    """The x column of a daily graph: `count` days ending with LAST_DAY_MS."""
    return [LAST_DAY_MS - (count - 1 - i) * DAY_MS for i in range(count)]


def graph_json(
    x: list[int],
    lines: list[tuple[str, str, str, list[int | float]]],
    *,
    formatter: str = "statsFormat('day')",
    **extra: Any,
) -> str:
    """Telegram's chart JSON: `lines` are (key, name, type, values); colors as it sends them."""
    palette = ("#3497ED", "#9ED448", "#F5BD25", "#E65850", "#5D5CDC", "#F79E39", "#2373DB")
    doc: dict[str, Any] = {
        "columns": [["x", *x], *([key, *values] for key, _, _, values in lines)],
        "types": {"x": "x", **{key: kind for key, _, kind, _ in lines}},
        "names": {key: name for key, name, _, _ in lines},
        "colors": {
            key: f"LINE{i}#{palette[i % len(palette)]}" for i, (key, *_) in enumerate(lines)
        },
        "hidden": [],
        "subchart": {"show": len(x) > 30, "defaultZoom": [x[max(0, len(x) - 30)], x[-1]]},
        "strokeWidth": 2,
        "xTickFormatter": formatter,
        "xTooltipFormatter": formatter.replace("statsFormat", "statsTooltipFormat"),
        "xRangeFormatter": "null",
        "yTickFormatter": "statsFormatKMBT",
        "yTooltipFormatter": "statsFormatTooltipValue",
        **extra,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def stats_graph(data: str, zoom_token: str | None = None) -> raw.types.StatsGraph:
    return raw.types.StatsGraph(json=raw.types.DataJSON(data=data), zoom_token=zoom_token)


def ramp(count: int, start: int, step: int) -> list[int | float]:
    return [start + i * step + (i * 37) % 11 for i in range(count)]


def graph_documents() -> dict[str, str]:
    """Each graph's JSON by name, as the realistic channel's statistics hold them."""
    week, quarter = days(7), days(90)
    hours = [LAST_DAY_MS + h * HOUR_MS for h in range(24)]
    return {
        "growth": graph_json(quarter, [("y0", "Total followers", "line", ramp(90, 5100, 5))]),
        "followers": graph_json(
            quarter,
            [("y0", "Joined", "line", ramp(90, 9, 0)), ("y1", "Left", "line", ramp(90, 3, 0))],
        ),
        "mute": graph_json(
            quarter,
            [("y0", "Muted", "line", ramp(90, 2, 0)), ("y1", "Unmuted", "line", ramp(90, 1, 0))],
        ),
        "top_hours": graph_json(
            hours,
            [
                ("y0", "Views (Dec 31 – Jan 6)", "line", [40 + (h * 53) % 97 for h in range(24)]),
                ("y1", "Views (Dec 24 – Dec 30)", "line", [35 + (h * 41) % 89 for h in range(24)]),
            ],
            formatter="statsFormat('hour')",
        ),
        "interactions": graph_json(
            quarter,
            [("y0", "Views", "line", ramp(90, 1500, 3)), ("y1", "Shares", "line", ramp(90, 20, 0))],
            y_scaled=True,
        ),
        "views_by_source": graph_json(
            week,
            [
                ("y0", "Followers", "bar", ramp(7, 1200, 10)),
                ("y1", "Other", "bar", ramp(7, 90, 1)),
                ("y2", "Channels", "bar", ramp(7, 150, 2)),
                ("y3", "Search", "bar", ramp(7, 40, 1)),
                ("y4", "Groups", "bar", ramp(7, 60, 1)),
                ("y5", "PM", "bar", ramp(7, 30, 0)),
                ("y6", "URL", "bar", ramp(7, 25, 0)),
            ],
            stacked=True,
        ),
        "new_followers_by_source": graph_json(
            week,
            [
                ("y0", "URL", "bar", ramp(7, 4, 0)),
                ("y1", "Search", "bar", ramp(7, 2, 0)),
                ("y2", "Channels", "bar", ramp(7, 3, 0)),
                ("y3", "Similar channels", "bar", ramp(7, 1, 0)),
            ],
            stacked=True,
        ),
        "languages": graph_json(
            week,
            [
                ("y0", "Russian", "area", ramp(7, 4200, 4)),
                ("y1", "English", "area", ramp(7, 900, 1)),
                ("y2", "Ukrainian", "area", ramp(7, 120, 0)),
                ("y3", "Other", "area", ramp(7, 80, 0)),
            ],
            percentage=True,
            stacked=True,
        ),
        "reactions_by_emotion": graph_json(
            week,
            [
                ("y0", "👍", "bar", ramp(7, 30, 1)),
                ("y1", "❤", "bar", ramp(7, 20, 1)),
                ("y2", "🔥", "bar", ramp(7, 12, 0)),
            ],
            stacked=True,
        ),
        "story_interactions": graph_json(
            week,
            [("y0", "Views", "line", ramp(7, 300, 2)), ("y1", "Shares", "line", ramp(7, 4, 0))],
        ),
        "story_reactions_by_emotion": graph_json(
            week, [("y0", "👍", "bar", ramp(7, 5, 0))], stacked=True
        ),
    }


def realistic_stats(dc_id: int = 2, *, tag: str = "graph") -> FakeStats:
    """A channel's statistics kept on `dc_id`: twelve graphs, two as tokens, one an error."""
    documents = graph_documents()
    graphs: dict[str, Any] = {}
    async_graphs: dict[str, Any] = {}
    for name in (
        "growth", "followers", "mute", "top_hours", "interactions", "iv_interactions",
        "views_by_source", "new_followers_by_source", "languages", "reactions_by_emotion",
        "story_interactions", "story_reactions_by_emotion",
    ):  # fmt: skip
        if name == ERROR_GRAPH:
            graphs[name] = raw.types.StatsGraphError(error=ERROR_TEXT)
        elif name in ASYNC_GRAPHS:
            token = f"{tag}:{name}:dc{dc_id}"
            graphs[name] = raw.types.StatsGraphAsync(token=token)
            async_graphs[token] = stats_graph(documents[name])
        else:
            zoom = f"{tag}:zoom:{name}" if name == ZOOM_GRAPH else None
            graphs[name] = stats_graph(documents[name], zoom_token=zoom)

    def counter(current: float, previous: float) -> raw.types.StatsAbsValueAndPrev:
        return raw.types.StatsAbsValueAndPrev(current=current, previous=previous)

    answer = raw.types.stats.BroadcastStats(
        period=raw.types.StatsDateRangeDays(min_date=PERIOD[0], max_date=PERIOD[1]),
        followers=counter(5545, 5481),
        views_per_post=counter(2431.5, 2210),
        shares_per_post=counter(31, 28.25),
        reactions_per_post=counter(87, 91),
        views_per_story=counter(312, 0),
        shares_per_story=counter(4, 0),
        reactions_per_story=counter(6, 0),
        enabled_notifications=raw.types.StatsPercentValue(part=1234, total=5545),
        **{f"{name}_graph": graph for name, graph in graphs.items()},
        recent_posts_interactions=[
            *(
                raw.types.PostInteractionCountersMessage(
                    msg_id=msg_id, views=views, forwards=forwards, reactions=reactions
                )
                for msg_id, views, forwards, reactions in RECENT_POSTS
            ),
            raw.types.PostInteractionCountersStory(story_id=7, views=310, forwards=2, reactions=5),
        ],
    )
    return FakeStats(answer=answer, dc_id=dc_id, async_graphs=async_graphs)
