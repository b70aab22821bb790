"""Values for docs/schema/: a valid one per schema (from docs/redis-keys.md's examples) and
wrong ones each schema must refuse. test_schema.py checks them with Python's jsonschema;
`python -m tests.schema_cases FILE` writes the wrong ones as JSON for `make types-check`,
which checks that Ajv (strict, draft 2020-12) refuses them too."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "redis-keys.md"


def doc_examples() -> list[tuple[str, Any]]:
    """(the section heading above it, the value) of every ```json block of the doc that is
    JSON (a few show a shape with `…` in place of values and are not)."""
    found = []
    heading = ""
    for block in re.split(r"^(#{2,3} .*)$", DOC.read_text(), flags=re.MULTILINE):
        if block.startswith("#"):
            heading = block
            continue
        for code in re.findall(r"```json\n(.*?)```", block, flags=re.DOTALL):
            try:
                found.append((heading, json.loads(code)))
            except ValueError:
                continue
    return found


def doc_example(heading: str, keys: set[str] | None = None) -> Any:
    """The doc's example under `heading` (with these top-level keys, when several)."""
    matches = [
        value
        for h, value in doc_examples()
        if heading in h and (keys is None or (isinstance(value, dict) and keys <= set(value)))
    ]
    assert matches, f"no JSON example under {heading!r} in docs/redis-keys.md"
    return copy.deepcopy(matches[-1])


def complete_post() -> dict[str, Any]:
    return dict(doc_example("A complete post"))


def examples() -> dict[str, Any]:
    """A valid value per schema, taken from the doc (the parts of a post from its complete
    example)."""
    post_ = complete_post()
    status = doc_example("`tg:status`", {"channels"})
    return {
        "stats.json": {**doc_example("`tg:channel:stats`"), "err24_percent": 18.5},
        "posts.json": [post_],
        "post.json": post_,
        "media-item.json": post_["media"][1],
        "link-preview.json": doc_example("The rendering fields", {"url", "display_url"}),
        "poll.json": doc_example("The rendering fields", {"question", "answers"}),
        "status.json": status,
        "history-point.json": {"t": 1736252100, "subscribers": 5500, "posts": 1200},
        "post-history.json": [
            {"t": 1736091000, "views": 130, "reactions": 4, "forwards": 0, "comments": 1},
            {"t": 1736091900, "views": 260, "reactions": 11, "forwards": 2, "comments": 3},
        ],
        "post-history-last.json": {
            "t": 1736091000, "views": 130, "reactions": 4, "forwards": 0, "comments": 1,
            "posted": 1736090000, "views_1h": 120, "views_24h": None,
        },
        "post-history-point.json": {
            "t": 1736091000, "views": 130, "reactions": 4, "forwards": 0, "comments": 1,
        },
        "channels.json": ["itatmisis", "itam_events", "itam_jobs"],
        "peer.json": {"id": 2987654321, "access_hash": -4503599627370495},
        "admin-stats.json": admin_stats_example(),
        "event.json": {
            "type": "post_edited", "channel": "itatmisis", "at": "2025-01-07T12:15:00+00:00",
            "post_id": "1556", "changed": "text_html,media",
        },
    }  # fmt: skip


def admin_stats_example() -> Any:
    """A whole admin statistics value, as the code writes it from a realistic answer."""
    from tests.render.test_admin_stats import realistic_value

    return realistic_value()


DELETE = object()


def changed(name: str, path: tuple[Any, ...], new: Any) -> Any:
    """The example for `name` with the value at `path` replaced (`DELETE`: removed)."""
    value = examples()[name]
    node = value
    for step in path[:-1]:
        node = node[step]
    if new is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return value


def changed_many(name: str, changes: dict[tuple[Any, ...], Any]) -> Any:
    """The example for `name` with several values replaced at once."""
    value = examples()[name]
    for path, new in changes.items():
        node = value
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = new
    return value


# (schema, path, new value, part of the error message): one change each schema must refuse.
WRONG: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("event.json", ("type",), "post_renamed", "is not valid under any"),
    ("event.json", ("post_id",), 1556, "is not valid under any"),
    ("event.json", ("post_id",), "0", "is not valid under any"),
    ("event.json", ("changed",), DELETE, "is not valid under any"),
    ("event.json", ("changed",), "text_html,views", "is not valid under any"),
    ("event.json", ("at",), "2025-01-07T12:15:00Z", "is not valid under any"),
    ("event.json", ("channel",), "@itatmisis", "is not valid under any"),
    ("status.json", ("channels", "itam_jobs", "admin_stats_at"), 0, "is not valid under any"),
    ("status.json", ("channels", "itam_jobs", "admin_stats_error"), 1, "is not of type 'string'"),
    (
        "status.json",
        ("channels", "itam_jobs", "admin_stats_error"),
        DELETE,
        "'admin_stats_error' is a required property",
    ),
    ("admin-stats.json", ("collected_at",), "2025-01-08T01:33:20Z", "does not match"),
    ("admin-stats.json", ("period", "min_date"), None, "is not of type 'string'"),
    ("admin-stats.json", ("followers", "current"), "5545", "is not of type 'number'"),
    ("admin-stats.json", ("followers",), DELETE, "'followers' is a required property"),
    ("admin-stats.json", ("enabled_notifications_percent",), 100.5, "greater than the maximum"),
    ("admin-stats.json", ("enabled_notifications_percent",), "22.3", "is not of type 'number'"),
    ("admin-stats.json", ("graphs", "languages"), DELETE, "'languages' is a required property"),
    ("admin-stats.json", ("graphs", "growth", "x", 0), 1735689600000, "is not valid under any"),
    ("admin-stats.json", ("graphs", "growth"), {"error": ""}, "is not valid under any"),
    ("admin-stats.json", ("graphs", "growth"), [], "is not valid under any"),
    ("admin-stats.json", ("graphs", "mute", "series", 0, "values", 0), "2", "is not valid under"),
    ("admin-stats.json", ("graphs", "mute", "series", 0, "name"), DELETE, "is not valid under"),
    ("admin-stats.json", ("recent_posts", 0, "id"), 0, "less than the minimum"),
    ("admin-stats.json", ("recent_posts", 0, "views"), -1, "less than the minimum"),
    ("stats.json", ("subscribers_count",), "5500", "is not of type 'integer'"),
    ("stats.json", ("subscribers_count",), 5500.5, "is not of type 'integer'"),
    ("stats.json", ("subscribers_count",), -1, "less than the minimum"),
    ("stats.json", ("posts_count",), -5, "less than the minimum"),
    ("stats.json", ("err24_percent",), "18.5", "is not of type 'number', 'null'"),
    ("stats.json", ("err24_percent",), -0.1, "less than the minimum"),
    ("stats.json", ("err24_percent",), DELETE, "'err24_percent' is a required property"),
    ("stats.json", ("collected_at",), "2025-01-07T12:15:00Z", "does not match"),
    ("stats.json", ("collected_at",), "2025-01-07T12:15:00.123456+00:00", "does not match"),
    ("stats.json", ("collected_at",), None, "None is not of type 'string'"),
    ("stats.json", ("last_post_date",), "2025-01-07T15:15:00+03:00", "is not valid under any"),
    ("stats.json", ("channel_id",), "-1001234567890", "is not of type 'integer'"),
    ("stats.json", ("channel_id",), -1234567890, "greater than the maximum"),
    ("stats.json", ("channel_id",), -10012345678901, "less than the minimum"),
    ("stats.json", ("username",), "", "is not valid under any"),
    ("stats.json", ("username",), "@itatmisis", "is not valid under any"),
    ("stats.json", ("title",), None, "None is not of type 'string'"),
    ("post.json", ("views_1h",), "412", "is not of type 'integer', 'null'"),
    ("post.json", ("views_24h",), 1020.5, "is not of type 'integer', 'null'"),
    ("post.json", ("views_24h",), -3, "less than the minimum"),
    ("post.json", ("views_24h",), DELETE, "'views_24h' is a required property"),
    ("post.json", ("views",), None, "None is not of type 'integer'"),
    ("post.json", ("views",), -1, "less than the minimum"),
    ("post.json", ("forwards",), -1, "less than the minimum"),
    ("post.json", ("comments_count",), -1, "less than the minimum"),
    ("post.json", ("id",), 0, "less than the minimum"),
    ("post.json", ("media_type",), "picture", "is not valid under any"),
    ("post.json", ("has_media",), "true", "is not of type 'boolean'"),
    ("post.json", ("reactions", "👍"), "89", "is not of type 'integer'"),
    ("post.json", ("reactions", "👍"), -89, "less than the minimum"),
    ("post.json", ("edited_at",), "yesterday", "is not valid under any"),
    ("post.json", ("media",), None, "None is not of type 'array'"),
    ("post.json", ("buttons", 0, 0, "url"), None, "None is not of type 'string'"),
    ("post.json", ("buttons", 0, 0, "url"), "javascript:alert(1)", "does not match"),
    ("post.json", ("buttons", 0, 0, "url"), "ftp://misis.ru/reg", "does not match"),
    ("post.json", ("buttons", 0), [], "should be non-empty"),
    ("post.json", ("forwarded_from",), "НИТУ МИСИС", "is not valid under any"),
    (
        "post.json",
        ("forwarded_from",),
        {"title": "НИТУ МИСИС", "link": "javascript:alert(1)"},
        "is not valid under any",
    ),
    ("post.json", ("link",), "https://evil.example/itatmisis/1556", "does not match"),
    ("post.json", ("link",), "javascript:alert(1)", "does not match"),
    ("post.json", ("text_html",), DELETE, "'text_html' is a required property"),
    ("posts.json", (0, "id"), "1556", "is not of type 'integer'"),
    ("media-item.json", ("width",), "1280", "is not of type 'integer', 'null'"),
    ("media-item.json", ("width",), -1, "less than the minimum"),
    ("media-item.json", ("size",), -1, "less than the minimum"),
    ("media-item.json", ("duration",), "12.5", "is not of type 'number', 'null'"),
    ("media-item.json", ("type",), "image", "is not one of"),
    ("media-item.json", ("image",), DELETE, "'image' is a required property"),
    ("media-item.json", ("image",), "https://example.com/a.jpg", "does not match"),
    ("media-item.json", ("thumbnail",), "https://example.com/a.jpg", "does not match"),
    ("media-item.json", ("thumbnail",), "data:image/jpeg;base64,<script>", "does not match"),
    ("link-preview.json", ("url",), 5, "is not valid under any"),
    ("link-preview.json", ("url",), "javascript:alert(1)", "is not valid under any"),
    ("link-preview.json", ("url",), "data:text/html,<b>", "is not valid under any"),
    ("link-preview.json", ("display_url",), "javascript:alert(1)", "does not match"),
    ("link-preview.json", ("display_url",), " JavaScript:alert(1)", "does not match"),
    ("link-preview.json", ("site_name",), DELETE, "'site_name' is a required property"),
    ("poll.json", ("total_voters",), "20", "is not of type 'integer', 'null'"),
    ("poll.json", ("total_voters",), -20, "less than the minimum"),
    ("poll.json", ("answers", 0, "percent"), "60", "is not valid under any"),
    ("poll.json", ("answers", 0, "percent"), 150, "is not valid under any"),
    ("poll.json", ("answers", 0, "percent"), -1, "is not valid under any"),
    ("poll.json", ("answers", 0, "voters"), -12, "less than the minimum"),
    ("poll.json", ("total_voters",), None, "is not of type 'null'"),
    ("poll.json", ("answers", 0, "voters"), None, "None is not of type 'integer'"),
    ("poll.json", ("answers", 1, "percent"), None, "None is not of type 'number'"),
    ("poll.json", ("closed",), None, "None is not of type 'boolean'"),
    ("status.json", ("retry_after",), 1736253000, "is not valid under any"),
    ("status.json", ("channels", "itam_jobs", "retry_after"), 3600, "is not valid under any"),
    (
        "status.json",
        ("channels", "itam_jobs", "retry_after"),
        DELETE,
        "'retry_after' is a required property",
    ),
    ("status.json", ("channels", "itam_jobs", "ok"), "false", "is not of type 'boolean'"),
    ("status.json", ("channels", "itam_jobs", "consecutive_failures"), -1, "less than the minimum"),
    (
        "status.json",
        ("channels", "itatmisis", "retry_after"),
        "2025-01-07T13:15:00+00:00",
        "is not of type 'null'",
    ),
    ("status.json", ("channels", "itatmisis", "consecutive_failures"), 2, "0 was expected"),
    ("status.json", ("channels", "itatmisis", "last_success_at"), None, "is not of type 'string'"),
    ("status.json", ("channels",), DELETE, "'channels' is a required property"),
    ("status.json", ("consecutive_failures",), "1", "is not of type 'integer'"),
    ("status.json", ("consecutive_failures",), 0, "less than the minimum of 1"),
    ("status.json", ("exit_code",), 7, "is not one of"),
    ("status.json", ("exit_code",), 0, "should not be valid under"),
    ("status.json", ("ok",), True, "0 was expected"),
    ("status.json", ("last_error",), 42, "is not of type 'string', 'null'"),
    ("status.json", ("last_error",), None, "None is not of type 'string'"),
    ("history-point.json", ("t",), 1736252100.5, "is not of type 'integer'"),
    ("history-point.json", ("t",), -1, "less than the minimum"),
    ("history-point.json", ("subscribers",), "5500", "is not of type 'integer'"),
    ("history-point.json", ("subscribers",), -5500, "less than the minimum"),
    ("history-point.json", ("posts",), DELETE, "'posts' is a required property"),
    ("post-history-last.json", ("views_24h",), -1, "is not valid under any"),
    ("post-history-last.json", ("posted",), "1736090000", "is not valid under any"),
    ("post-history-point.json", ("views",), None, "None is not of type 'integer'"),
    ("post-history-point.json", ("views",), -130, "less than the minimum"),
    ("post-history-point.json", ("t",), "1736091000", "is not of type 'integer'"),
    ("post-history-point.json", ("comments",), DELETE, "'comments' is a required property"),
    ("post-history.json", (1, "reactions"), "11", "is not of type 'integer'"),
    ("channels.json", (0,), "ITAtMISIS", "does not match"),
    ("channels.json", (1,), "itatmisis", "has non-unique elements"),
    ("peer.json", ("access_hash",), "-4503599627370495", "is not of type 'integer'"),
    ("peer.json", ("access_hash",), 2**64, "greater than the maximum"),
    ("peer.json", ("access_hash",), -(2**64), "less than the minimum"),
    ("peer.json", ("id",), DELETE, "'id' is a required property"),
    ("peer.json", ("id",), 0, "less than the minimum"),
]

# Several values changed together: a rule between fields.
WRONG_TOGETHER: list[tuple[str, dict[tuple[Any, ...], Any], str]] = [
    # has_media false exactly when media is empty
    ("post.json", {("has_media",): False}, "is not of type 'null'"),
    (
        "post.json",
        {("has_media",): False, ("media_type",): None, ("media_count",): 0},
        "is expected to be empty",
    ),
    (
        "post.json",
        {("media",): [], ("media_count",): 0},
        "should be non-empty",
    ),
    # total_voters null exactly when every answer's voters and percent are
    (
        "poll.json",
        {("answers", 0, "voters"): None, ("answers", 0, "percent"): None},
        "None is not of type 'integer'",
    ),
    # ok true only with exit code 0 (and no failure in a row)
    ("status.json", {("ok",): True, ("consecutive_failures",): 0}, "0 was expected"),
    ("status.json", {("ok",): True, ("exit_code",): 0}, "0 was expected"),
]

# What only Python's big integers can tell apart: a JSON number beyond 2^53 reaches a
# JavaScript validator rounded (2^63 reads as 9223372036854775807, the bound, does).
WRONG_IN_PYTHON_ONLY: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("peer.json", ("access_hash",), 2**63, "greater than the maximum"),
    ("peer.json", ("access_hash",), -(2**63) - 1, "less than the minimum"),
]

# What JSON Schema cannot state, checked beside it (tests/schemas.py: beyond_schema).
WRONG_BEYOND_SCHEMA: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("post-history.json", (1, "t"), 1736091000, "t not strictly increasing"),
    ("post-history.json", (1, "t"), 1736090000, "t not strictly increasing"),
    (
        "post.json",
        ("reactions",),
        {"🔥": 34, "👍": 89, "custom:5368324170671202286": 12, "⭐": 25},
        "not by count (largest first), then key",
    ),
    ("post.json", ("reactions_total",), 159, "do not sum to reactions_total"),
]


def refused_cases() -> list[dict[str, Any]]:
    """Every wrong value a JSON Schema validator must refuse: schema, value, why."""
    cases = [
        {"schema": name, "value": changed(name, path, new), "why": message}
        for name, path, new, message in WRONG
    ]
    cases += [
        {"schema": name, "value": changed_many(name, changes), "why": message}
        for name, changes, message in WRONG_TOGETHER
    ]
    return cases


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(refused_cases(), ensure_ascii=False, indent=1))
