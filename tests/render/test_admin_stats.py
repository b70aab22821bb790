"""Admin statistics as stored: Telegram's graph JSON and stats.broadcastStats → the value of
tg:channel:<name>:admin_stats (pure functions: no client, no Redis)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from pyrogram import raw

from itam_tgstats.render.admin_stats import (
    GRAPHS,
    MAX_GRAPH_JSON,
    UnreadableStats,
    admin_stats_value,
    async_tokens,
    graph_value,
    parse_graph_json,
)
from tests.fakestats import (
    ASYNC_GRAPHS,
    ERROR_GRAPH,
    ERROR_TEXT,
    ZOOM_GRAPH,
    graph_documents,
    realistic_stats,
)
from tests.faketg import roundtrip
from tests.schemas import errors_of

JAN_5, JAN_6 = 1_736_035_200_000, 1_736_121_600_000  # 00:00 UTC, in milliseconds
FOLLOWERS_JSON = json.dumps(
    {
        "columns": [["x", JAN_5, JAN_6], ["y0", 5, 7], ["y1", 1, 0]],
        "types": {"y0": "line", "y1": "line", "x": "x"},
        "names": {"y0": "Joined", "y1": "Left"},
        "colors": {"y0": "GREEN#3497ED", "y1": "RED#E65850"},
        "hidden": [],
        "subchart": {"show": True, "defaultZoom": [JAN_5, JAN_6]},
        "strokeWidth": 2,
        "title": "Followers",
        "xTickFormatter": "statsFormat('day')",
        "xTooltipFormatter": "statsTooltipFormat('day')",
        "yTickFormatter": "statsFormatKMBT",
    }
)
FOLLOWERS = {
    "x": ["2025-01-05T00:00:00+00:00", "2025-01-06T00:00:00+00:00"],
    "series": [
        {"key": "y0", "name": "Joined", "type": "line", "values": [5, 7]},
        {"key": "y1", "name": "Left", "type": "line", "values": [1, 0]},
    ],
}
COLLECTED_AT = 1_736_300_000  # 2025-01-08T01:33:20Z


def graph(columns: list[Any], **fields: Any) -> str:
    return json.dumps({"columns": columns, **fields})


# --- one graph ---------------------------------------------------------------------------------


def test_a_graph_as_telegram_sends_it() -> None:
    assert parse_graph_json(FOLLOWERS_JSON) == FOLLOWERS


def test_the_x_column_is_the_one_typed_x_wherever_it_is() -> None:
    data = graph(
        [["y0", 3.5, 4], ["day", JAN_5, JAN_6]],
        types={"y0": "bar", "day": "x"},
        names={"y0": "Views"},
    )
    assert parse_graph_json(data) == {
        "x": FOLLOWERS["x"],
        "series": [{"key": "y0", "name": "Views", "type": "bar", "values": [3.5, 4]}],
    }


def test_without_types_or_names_the_label_x_is_the_axis_a_series_a_line_named_by_its_label() -> (
    None
):
    assert parse_graph_json(graph([["x", JAN_5], ["y0", 1]])) == {
        "x": ["2025-01-05T00:00:00+00:00"],
        "series": [{"key": "y0", "name": "y0", "type": "line", "values": [1]}],
    }


def test_the_hours_of_top_hours_are_times_of_one_day() -> None:
    value = parse_graph_json(graph_documents()["top_hours"])
    assert value["x"][0] == "2025-01-06T00:00:00+00:00"
    assert value["x"][23] == "2025-01-06T23:00:00+00:00"
    assert [s["name"] for s in value["series"]] == [
        "Views (Dec 31 – Jan 6)",
        "Views (Dec 24 – Dec 30)",
    ]
    assert all(len(s["values"]) == 24 for s in value["series"])


def test_an_empty_graph_is_a_graph() -> None:
    assert parse_graph_json(graph([["x"], ["y0"]])) == {
        "x": [],
        "series": [{"key": "y0", "name": "y0", "type": "line", "values": []}],
    }


def test_a_graph_error_is_stored_as_one_clean_line() -> None:
    sent = raw.types.StatsGraphError(error="Not enough\n data\x1b[31m\u202e yet")
    assert graph_value(roundtrip(sent)) == {"error": "Not enough data\\u001b[31m\\u202e yet"}
    assert graph_value(raw.types.StatsGraphError(error=" \n")) == {
        "error": "Telegram sent an error without a text"
    }
    long = graph_value(raw.types.StatsGraphError(error="x" * 5000))
    assert long is not None
    assert len(long["error"]) == 200


def test_graph_value_of_each_kind() -> None:
    assert graph_value(None) is None
    assert (
        graph_value(
            raw.types.StatsGraph(json=raw.types.DataJSON(data=FOLLOWERS_JSON), zoom_token="z")
        )
        == FOLLOWERS
    )
    assert graph_value(raw.types.StatsGraphAsync(token="t")) == {
        "error": "not loaded: Telegram sent a token for stats.loadAsyncGraph"
    }
    assert graph_value(raw.types.DataJSON(data="{}")) == {
        "error": "cannot read the graph: Telegram sent DataJSON"
    }


# --- hostile or broken JSON: {"error"}, never an exception -------------------------------------

TOO_LONG = '{"columns":[["x"]],"pad":"' + "a" * MAX_GRAPH_JSON + '"}'


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        ("{'columns': []}", "not JSON (Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1))"),
        ("[" * 100_000 + "]" * 100_000, "its JSON is nested too deeply"),
        ('{"columns": [["x", 1], ["y0", NaN]]}', "not JSON (NaN is not a number)"),
        ('{"columns": [["x", 1], ["y0", Infinity]]}', "not JSON (Infinity is not a number)"),
        ('{"columns": [["x", 1], ["y0", -1e999]]}', "not JSON (-1e999 is out of range)"),
        ('{"columns": [["x", 1], ["y0", ' + "9" * 5000 + "]]}",
         "not JSON (a number of 5000 digits is out of range)"),
        (TOO_LONG, f"its JSON is longer than {MAX_GRAPH_JSON} characters"),
        ("[]", "its JSON is not an object"),
        ('"columns"', "its JSON is not an object"),
        ("{}", "no columns"),
        ('{"columns": []}', "no columns"),
        ('{"columns": {"x": [1]}}', "no columns"),
        (graph(["x", 1]), "a column without a label"),
        (graph([[]]), "a column without a label"),
        (graph([[1, 2]]), "a column without a label"),
        (graph([["x", 1], ["y0", "5"]]), "column 'y0' holds a string, not a number"),
        (graph([["x", 1], ["y0", True]]), "column 'y0' holds a boolean, not a number"),
        (graph([["x", 1], ["y0", None]]), "column 'y0' holds null, not a number"),
        (graph([["x", 1], ["y0", [1]]]), "column 'y0' holds a list, not a number"),
        (graph([["x", 1], ["y0", {"v": 1}]]), "column 'y0' holds an object, not a number"),
        (graph([["x", 1], ["y0", 2**53 + 1]]), "column 'y0' holds a number beyond ±2^53"),
        (graph([["x", 1], ["y0", -1e300]]), "column 'y0' holds a number beyond ±2^53"),
        (graph([["x", 1, 2], ["y0", 1]]), "column 'y0' has 1 values for 2 times"),
        (graph([["x", 1], ["x", 2]]), "two columns labelled 'x'"),
        (graph([["x", 1], ["t", 2]], types={"t": "x"}), "two x columns"),
        (graph([["y0", 1]]), "no x column"),
        (graph([["x", 1]], types={"x": "line"}), "no x column"),
        (graph([["x", -1]]), "the x column holds a time before 1970 or after 9999"),
        (graph([["x", 253_402_300_800_000]]),
         "the x column holds a time before 1970 or after 9999"),
        (graph([["x", "2025-01-05"]]), "the x column holds a string, not milliseconds"),
        (graph([["x", 1.5]]), "the x column holds a fraction, not milliseconds"),
        (graph([["x", False]]), "the x column holds a boolean, not milliseconds"),
        (graph([["x", 1]], types=["x"]), "'types' is not an object of strings"),
        (graph([["x", 1], ["y0", 1]], names={"y0": 5}), "'names' is not an object of strings"),
    ],
)  # fmt: skip
def test_what_is_not_a_graph_is_stored_as_an_error_saying_why(data: str, why: str) -> None:
    assert parse_graph_json(data) == {"error": f"cannot read the graph: {why}"[:200]}


def test_an_error_naming_a_hostile_label_stays_one_short_line() -> None:
    label = "y\n" + "\x1b" * 300
    error = parse_graph_json(graph([["x", 1], [label, "v"]]))["error"]
    assert "\n" not in error
    assert "\x1b" not in error
    assert len(error) == 200


def test_numbers_at_the_bounds_are_kept() -> None:
    value = parse_graph_json(graph([["x", 0, 253_402_300_799_999], ["y0", 2**53, -(2**53)]]))
    assert value == {
        "x": ["1970-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"],
        "series": [{"key": "y0", "name": "y0", "type": "line", "values": [2**53, -(2**53)]}],
    }


def test_a_deep_but_parseable_document_is_refused_without_recursing() -> None:
    nested: Any = 1
    for _ in range(500):
        nested = [nested]
    assert parse_graph_json(graph([["x", 1], ["y0", nested]])) == {
        "error": "cannot read the graph: column 'y0' holds a list, not a number"
    }


# --- the whole answer ------------------------------------------------------------------------


def realistic_value(**options: Any) -> dict[str, Any]:
    stats = realistic_stats()
    answer = roundtrip(stats.answer)  # as Pyrogram reads it off the wire
    loaded = {
        name: roundtrip(stats.async_graphs[token]) for name, token in async_tokens(answer).items()
    }
    return admin_stats_value(answer, collected_at=COLLECTED_AT, loaded=loaded, **options)


def test_the_overview_of_a_realistic_answer() -> None:
    value = realistic_value()
    assert list(value) == [
        "collected_at", "period", "followers", "views_per_post", "shares_per_post",
        "reactions_per_post", "views_per_story", "shares_per_story", "reactions_per_story",
        "enabled_notifications_percent", "graphs", "recent_posts",
    ]  # fmt: skip
    assert {k: v for k, v in value.items() if k != "graphs"} == {
        "collected_at": "2025-01-08T01:33:20+00:00",
        "period": {
            "min_date": "2025-01-01T00:00:00+00:00",
            "max_date": "2025-01-08T00:00:00+00:00",
        },
        "followers": {"current": 5545, "previous": 5481},
        "views_per_post": {"current": 2431.5, "previous": 2210},
        "shares_per_post": {"current": 31, "previous": 28.25},
        "reactions_per_post": {"current": 87, "previous": 91},
        "views_per_story": {"current": 312, "previous": 0},
        "shares_per_story": {"current": 4, "previous": 0},
        "reactions_per_story": {"current": 6, "previous": 0},
        "enabled_notifications_percent": 22.3,  # 1234 of 5545
        "recent_posts": [  # the story among them is left out
            {"id": 1205, "views": 2100, "forwards": 31, "reactions": 87},
            {"id": 1204, "views": 3400, "forwards": 52, "reactions": 140},
            {"id": 1203, "views": 1800, "forwards": 12, "reactions": 40},
        ],
    }
    # Whole numbers are stored as integers, whatever the wire's doubles.
    assert isinstance(value["followers"]["current"], int)


def test_every_graph_of_a_realistic_answer() -> None:
    graphs = realistic_value()["graphs"]
    assert list(graphs) == list(GRAPHS)
    assert graphs[ERROR_GRAPH] == {"error": ERROR_TEXT}
    documents = graph_documents()
    for name in GRAPHS:
        if name != ERROR_GRAPH:  # the two loaded from tokens and the zoomable one included
            assert graphs[name] == parse_graph_json(documents[name]), name
            assert "error" not in graphs[name], name
    assert ZOOM_GRAPH not in ASYNC_GRAPHS
    assert len(graphs["growth"]["x"]) == 90
    assert [s["name"] for s in graphs["languages"]["series"]] == [
        "Russian", "English", "Ukrainian", "Other",
    ]  # fmt: skip
    assert [s["name"] for s in graphs["reactions_by_emotion"]["series"]] == ["👍", "❤", "🔥"]


def test_a_token_left_unloaded_is_an_error_and_the_rest_is_kept() -> None:
    value = admin_stats_value(realistic_stats().answer, collected_at=COLLECTED_AT)
    for name in ASYNC_GRAPHS:
        assert value["graphs"][name] == {
            "error": "not loaded: Telegram sent a token for stats.loadAsyncGraph"
        }
    assert "x" in value["graphs"]["followers"]


def test_one_unreadable_graph_costs_only_itself() -> None:
    answer = realistic_stats().answer
    answer.mute_graph = raw.types.StatsGraph(json=raw.types.DataJSON(data='{"columns": 5}'))
    graphs = admin_stats_value(roundtrip(answer), collected_at=COLLECTED_AT)["graphs"]
    assert graphs["mute"] == {"error": "cannot read the graph: no columns"}
    assert "x" in graphs["growth"]
    assert "x" in graphs["followers"]


def test_a_graph_telegram_did_not_send_is_null() -> None:
    answer = realistic_stats().answer
    answer.story_interactions_graph = None  # an older layer's answer has no story graphs
    graphs = admin_stats_value(answer, collected_at=COLLECTED_AT)["graphs"]
    assert graphs["story_interactions"] is None


def test_async_tokens_in_graph_order() -> None:
    answer = realistic_stats(4).answer
    assert async_tokens(answer) == {
        "views_by_source": "graph:views_by_source:dc4",
        "languages": "graph:languages:dc4",
    }


@pytest.mark.parametrize(
    ("part", "total", "percent"),
    [
        (1234, 5545, 22.3),
        (0, 5545, 0.0),
        (5545, 5545, 100.0),
        (6000, 5545, 100.0),  # never above 100
        (-3, 5545, 0.0),
        (1, 3, 33.3),
        (2, 3, 66.7),
        (10, 0, None),  # no followers: no percentage
        (math.nan, 5545, None),
        (1, math.inf, None),
    ],
)
def test_enabled_notifications_percent(part: float, total: float, percent: float | None) -> None:
    answer = realistic_stats().answer
    answer.enabled_notifications = raw.types.StatsPercentValue(part=part, total=total)
    value = admin_stats_value(roundtrip(answer), collected_at=COLLECTED_AT)
    assert value["enabled_notifications_percent"] == percent


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_counter_that_is_not_a_finite_number_makes_the_answer_unreadable(number: float) -> None:
    answer = realistic_stats().answer
    answer.shares_per_post = raw.types.StatsAbsValueAndPrev(current=1, previous=number)
    with pytest.raises(UnreadableStats, match="for shares_per_post, not a finite number"):
        admin_stats_value(roundtrip(answer), collected_at=COLLECTED_AT)


def test_a_negative_period_makes_the_answer_unreadable() -> None:
    answer = realistic_stats().answer
    answer.period = raw.types.StatsDateRangeDays(min_date=-5, max_date=0)
    with pytest.raises(UnreadableStats, match="Telegram sent -5 in period, not a unix time"):
        admin_stats_value(roundtrip(answer), collected_at=COLLECTED_AT)


def test_something_else_than_broadcast_stats_is_unreadable() -> None:
    with pytest.raises(UnreadableStats, match="Telegram sent StatsGraphError"):
        admin_stats_value(raw.types.StatsGraphError(error="x"), collected_at=COLLECTED_AT)


def test_recent_posts_keep_messages_with_an_id_and_no_negative_count() -> None:
    answer = realistic_stats().answer
    answer.recent_posts_interactions = [
        raw.types.PostInteractionCountersMessage(msg_id=9, views=-1, forwards=2, reactions=-7),
        raw.types.PostInteractionCountersMessage(msg_id=0, views=1, forwards=1, reactions=1),
        raw.types.PostInteractionCountersStory(story_id=3, views=1, forwards=1, reactions=1),
    ]
    value = admin_stats_value(roundtrip(answer), collected_at=COLLECTED_AT)
    assert value["recent_posts"] == [{"id": 9, "views": 0, "forwards": 2, "reactions": 0}]


# --- the schema ----------------------------------------------------------------------------


def test_the_values_written_match_the_schema() -> None:
    assert errors_of("admin-stats.json", realistic_value()) == []
    unloaded = admin_stats_value(realistic_stats().answer, collected_at=COLLECTED_AT)
    answer = realistic_stats().answer
    answer.enabled_notifications = raw.types.StatsPercentValue(part=0, total=0)
    answer.growth_graph = None
    sparse = admin_stats_value(answer, collected_at=COLLECTED_AT)
    assert errors_of("admin-stats.json", unloaded) == []
    assert errors_of("admin-stats.json", sparse) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda v: v.update(enabled_notifications_percent=100.5),
         "['enabled_notifications_percent']"),
        (lambda v: v["graphs"].pop("languages"), "['graphs']"),
        (lambda v: v["graphs"]["growth"]["x"].__setitem__(0, "yesterday"), "['graphs']['growth']"),
        (lambda v: v["graphs"]["mute"].update(series=[{"key": "y0"}]), "['graphs']['mute']"),
        (lambda v: v["graphs"].update(mute={"error": ""}), "['graphs']['mute']"),
        (lambda v: v["recent_posts"][0].update(views=-1), "['recent_posts'][0]['views']"),
        (lambda v: v["recent_posts"][0].update(id=0), "['recent_posts'][0]['id']"),
        (lambda v: v["followers"].update(previous="5481"), "['followers']['previous']"),
        (lambda v: v["period"].pop("max_date"), "['period']"),
    ],
)  # fmt: skip
def test_the_schema_refuses_what_the_tool_never_writes(change: Any, where: str) -> None:
    value = realistic_value()
    change(value)
    errors = errors_of("admin-stats.json", value)
    assert errors
    assert all(e.startswith(where) for e in errors), errors


def test_the_example_in_the_docs_is_what_the_code_writes() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "admin-stats.md").read_text()
    [block] = re.findall(r"```json\n(.*?)```", page, flags=re.DOTALL)
    example = json.loads(block)
    value = realistic_value()
    overview = {k: v for k, v in value.items() if k not in ("graphs", "recent_posts")}
    assert {k: v for k, v in example.items() if k not in ("graphs", "recent_posts")} == overview
    assert example["graphs"]["followers"] == FOLLOWERS
    assert example["graphs"][ERROR_GRAPH] == value["graphs"][ERROR_GRAPH]
    assert example["recent_posts"] == value["recent_posts"][:1]
    # Shortened there: with the other graphs it is a whole value.
    assert (
        errors_of(
            "admin-stats.json", {**example, "graphs": {**value["graphs"], **example["graphs"]}}
        )
        == []
    )
