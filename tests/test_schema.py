"""docs/schema/: valid JSON Schemas, strict on types and null, open to new fields; what a real
pass writes matches them; docs/redis-keys.md links them and its examples match them.

(Every other test that uses Redis is checked against them too: see conftest.py.)"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from itam_tgstats.errors import ChannelsFailed
from tests.channels import media_channel, post, register_files, rich_channel
from tests.conftest import RedisServer
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass
from tests.schemas import (
    SCHEMA_DIR,
    PlantingRedis,
    check_database,
    errors_of,
    registry,
    schema_files,
    schema_of,
)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "redis-keys.md"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
VALUE_SCHEMAS = (
    "stats.json", "posts.json", "post.json", "media-item.json", "link-preview.json", "poll.json",
    "status.json", "history-point.json", "post-history.json", "post-history-point.json",
    "channels.json", "peer.json", "event.json",
)  # fmt: skip


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / name).read_text()))


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a schema, the schema itself first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# --- the files themselves ----------------------------------------------------------------------


def test_every_schema_file_is_a_valid_draft_2020_12_schema_with_its_own_id() -> None:
    names = [path.name for path in schema_files()]
    assert sorted(names) == sorted([*VALUE_SCHEMAS, "common.json"])
    for name in names:
        schema = load(name)
        assert schema["$schema"] == DRAFT, name
        assert schema["$id"] == name, name  # relative: $refs resolve between the files
        Draft202012Validator.check_schema(schema)


def test_every_ref_resolves_offline() -> None:
    for name in [path.name for path in schema_files()]:
        resolver = registry().resolver(base_uri=name)
        for node in walk(load(name)):
            if isinstance(node.get("$ref"), str):
                resolver.lookup(node["$ref"])  # raises when the target does not exist


def test_open_to_unknown_fields_and_strict_on_every_field_listed() -> None:
    for name in [path.name for path in schema_files()]:
        for node in walk(load(name)):
            assert node.get("additionalProperties") is not False, name
            assert node.get("unevaluatedProperties") is not False, name
            # An object lists every field it always has as required.
            if node.get("type") == "object" and "properties" in node:
                assert set(node.get("required", ())) == set(node["properties"]), (name, node)


# --- examples: the docs' own, complete ----------------------------------------------------------


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
        "post-history-point.json": {
            "t": 1736091000, "views": 130, "reactions": 4, "forwards": 0, "comments": 1,
        },
        "channels.json": ["itatmisis", "itam_events", "itam_jobs"],
        "peer.json": {"id": 2987654321, "access_hash": -4503599627370495},
        "event.json": {
            "type": "post_edited", "channel": "itatmisis", "at": "2025-01-07T12:15:00+00:00",
            "post_id": "1556", "changed": "text_html,media",
        },
    }  # fmt: skip


def test_the_complete_post_example_in_the_doc_has_every_field_and_matches() -> None:
    example = complete_post()
    assert set(example) == set(load("post.json")["properties"])
    assert set(example["media"][0]) == set(load("media-item.json")["properties"])
    assert errors_of("post.json", example) == []


def test_every_json_example_in_the_doc_matches_its_schema() -> None:
    by_heading = {
        "`tg:channel:stats`": "stats.json",
        "A complete post": "post.json",
        "`tg:status`": "status.json",
    }
    checked = 0
    for heading, value in doc_examples():
        schema = next((s for h, s in by_heading.items() if h in heading), None)
        if "The rendering fields" in heading and isinstance(value, dict):
            schema = (
                "media-item.json" if "width" in value
                else "link-preview.json" if "display_url" in value
                else "poll.json" if "question" in value
                else None
            )  # fmt: skip
        if schema is None:
            continue
        if schema == "stats.json":
            value = {**value, "err24_percent": None}  # the v1 example shows the v1 fields
        assert errors_of(schema, value) == [], (heading, value)
        checked += 1
    assert checked >= 7  # stats, a complete post, media item, link card, poll, two statuses


def test_the_doc_links_every_schema_and_every_key_to_one() -> None:
    text = DOC.read_text()
    for path in schema_files():
        assert f"(schema/{path.name})" in text, path.name
    rows = [line for line in text.splitlines() if line.startswith("| `tg:")]
    for key in ("tg:channel:stats", "tg:channel:posts", "tg:channel:history",
                "tg:channel:post_history", "tg:channels", "tg:status", "tg:peer:",
                "tg:events"):  # fmt: skip
        assert any(r.startswith(f"| `{key}") and "(schema/" in r for r in rows), key
    assert "../" not in text  # the doc stands on its own: links stay inside the repository
    for target in re.findall(r"\]\((schema/[^)#]+)", text):
        assert (DOC.parent / target).is_file(), target


def test_the_examples_match() -> None:
    for name, value in examples().items():
        assert errors_of(name, value) == [], name


def test_new_fields_are_accepted_everywhere() -> None:
    """Open: a newer version's extra fields never make a value invalid."""
    for name, value in examples().items():
        extended = copy.deepcopy(value)
        # Every record gains a field; maps (reaction → count, name → channel) are not records.
        maps = [node[key] for node in walk(extended) for key in ("reactions", "channels")
                if isinstance(node.get(key), dict)]  # fmt: skip
        for node in list(walk(extended)):
            if not any(node is m for m in maps):
                node["added_in_a_later_version"] = {"any": ["thing"]}
        assert errors_of(name, extended) == [], name


# --- each schema refuses what the tool never writes ---------------------------------------------


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


DELETE = object()
WRONG: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("stats.json", ("subscribers_count",), "5500", "is not of type 'integer'"),
    ("stats.json", ("subscribers_count",), 5500.5, "is not of type 'integer'"),
    ("stats.json", ("err24_percent",), "18.5", "is not of type 'number', 'null'"),
    ("stats.json", ("err24_percent",), DELETE, "'err24_percent' is a required property"),
    ("stats.json", ("collected_at",), "2025-01-07T12:15:00Z", "does not match"),
    ("stats.json", ("collected_at",), "2025-01-07T12:15:00.123456+00:00", "does not match"),
    ("stats.json", ("collected_at",), None, "None is not of type 'string'"),
    ("stats.json", ("last_post_date",), "2025-01-07T15:15:00+03:00", "is not valid under any"),
    ("stats.json", ("channel_id",), "-1001234567890", "is not of type 'integer'"),
    ("stats.json", ("title",), None, "None is not of type 'string'"),
    ("post.json", ("views_1h",), "412", "is not of type 'integer', 'null'"),
    ("post.json", ("views_24h",), 1020.5, "is not of type 'integer', 'null'"),
    ("post.json", ("views_24h",), DELETE, "'views_24h' is a required property"),
    ("post.json", ("views",), None, "None is not of type 'integer'"),
    ("post.json", ("media_type",), "picture", "is not valid under any"),
    ("post.json", ("has_media",), "true", "is not of type 'boolean'"),
    ("post.json", ("has_media",), False, "'photo' is not of type 'null'"),
    ("post.json", ("reactions", "👍"), "89", "is not of type 'integer'"),
    ("post.json", ("edited_at",), "yesterday", "is not valid under any"),
    ("post.json", ("media",), None, "None is not of type 'array'"),
    ("post.json", ("buttons", 0, 0, "url"), None, "None is not of type 'string'"),
    ("post.json", ("forwarded_from",), "НИТУ МИСИС", "is not valid under any"),
    ("post.json", ("text_html",), DELETE, "'text_html' is a required property"),
    ("posts.json", (0, "id"), "1556", "is not of type 'integer'"),
    ("media-item.json", ("width",), "1280", "is not of type 'integer', 'null'"),
    ("media-item.json", ("duration",), "12.5", "is not of type 'number', 'null'"),
    ("media-item.json", ("type",), "image", "is not one of"),
    ("media-item.json", ("image",), DELETE, "'image' is a required property"),
    ("media-item.json", ("thumbnail",), "https://example.com/a.jpg", "does not match"),
    ("link-preview.json", ("url",), 5, "is not of type 'string', 'null'"),
    ("link-preview.json", ("site_name",), DELETE, "'site_name' is a required property"),
    ("poll.json", ("total_voters",), "20", "is not of type 'integer', 'null'"),
    ("poll.json", ("answers", 0, "percent"), "60", "is not of type 'number', 'null'"),
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
    ("status.json", ("channels",), DELETE, "'channels' is a required property"),
    ("status.json", ("consecutive_failures",), "1", "is not of type 'integer'"),
    ("status.json", ("exit_code",), 7, "is not one of"),
    ("status.json", ("last_error",), 42, "is not of type 'string', 'null'"),
    ("history-point.json", ("t",), 1736252100.5, "is not of type 'integer'"),
    ("history-point.json", ("subscribers",), "5500", "is not of type 'integer'"),
    ("history-point.json", ("posts",), DELETE, "'posts' is a required property"),
    ("post-history-point.json", ("views",), None, "None is not of type 'integer'"),
    ("post-history-point.json", ("t",), "1736091000", "is not of type 'integer'"),
    ("post-history-point.json", ("comments",), DELETE, "'comments' is a required property"),
    ("post-history.json", (1, "reactions"), "11", "is not of type 'integer'"),
    ("channels.json", (0,), "ITAtMISIS", "does not match"),
    ("channels.json", (1,), "itatmisis", "has non-unique elements"),
    ("peer.json", ("access_hash",), "-4503599627370495", "is not of type 'integer'"),
    ("peer.json", ("id",), DELETE, "'id' is a required property"),
    ("event.json", ("type",), "post_renamed", "is not valid under any"),
    ("event.json", ("post_id",), 1556, "is not valid under any"),
    ("event.json", ("post_id",), "0", "is not valid under any"),
    ("event.json", ("changed",), DELETE, "is not valid under any"),
    ("event.json", ("changed",), "text_html,views", "is not valid under any"),
    ("event.json", ("at",), "2025-01-07T12:15:00Z", "is not valid under any"),
    ("event.json", ("channel",), "@itatmisis", "is not valid under any"),
]


@pytest.mark.parametrize(
    ("name", "path", "new", "message"),
    WRONG,
    ids=[f"{n}:{'.'.join(map(str, p))}={'-' if v is DELETE else v!r}" for n, p, v, _ in WRONG],
)
def test_each_schema_refuses_a_wrong_type_or_a_missing_field(
    name: str, path: tuple[Any, ...], new: Any, message: str
) -> None:
    problems = errors_of(name, changed(name, path, new))
    assert any(message in p for p in problems), problems


def test_every_schema_refuses_something() -> None:
    assert {name for name, *_ in WRONG} == set(VALUE_SCHEMAS)


@pytest.mark.parametrize(
    ("name", "value"),
    [("posts.json", {"id": 1}), ("post-history.json", {"1556": []}), ("channels.json", "itatmisis"),
     ("status.json", []), ("stats.json", None), ("peer.json", [1, 2])],
)  # fmt: skip
def test_the_wrong_kind_of_value_is_refused(name: str, value: Any) -> None:
    assert errors_of(name, value) != []


# --- what a real pass writes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(redis_server: RedisServer) -> dict[str, list[Any]]:
    """Every JSON value two passes leave in Redis, by schema: two channels read (one with
    downloaded images, one with a post minutes old), one missing (backed off)."""
    fake = FakeTelegram()
    rich = fake.add_channel(rich_channel())
    rich.messages.append(post(rich.id, 1015, "Fresh", date=int(time.time()) - 600, views=42))
    register_files(fake, fake.add_channel(media_channel()))
    settings = make_settings(
        fake,
        redis_server.url,
        TG_CHANNEL_USERNAME="itatmisis, itam_media, no_such_channel",
        TG_MEDIA_DOWNLOAD="small",
    )
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
        for _ in range(2):  # the second pass skips the missing channel (its retry_after)
            with pytest.raises(ChannelsFailed):
                run_pass(settings, fake)
        values: dict[str, list[Any]] = {name: [] for name in VALUE_SCHEMAS}
        values["problems"] = check_database(client)  # the whole database, as the hook does
        for raw_key in client.scan_iter(match=b"tg:*"):
            key = raw_key.decode()
            kind, schema = schema_of(key) or ("", None)
            if schema is None or schema.startswith("common.json"):
                continue
            if kind == "zset":
                stored = [json.loads(m) for m in client.zrange(raw_key, 0, -1)]
            elif kind == "hash":
                stored = [json.loads(v) for v in client.hvals(raw_key)]
            elif kind == "stream":  # each entry's fields, strings
                stored = [
                    {k.decode(): v.decode() for k, v in fields.items()}
                    for _, fields in client.xrange(raw_key)
                ]
            else:
                stored = [json.loads(client.get(raw_key) or b"null")]
            values[schema] += stored
        client.flushdb()
    values["post.json"] = [p for posts in values["posts.json"] for p in posts]
    values["media-item.json"] = [m for p in values["post.json"] for m in p["media"]]
    values["link-preview.json"] = [p["link_preview"] for p in values["post.json"]
                                   if p["link_preview"] is not None]  # fmt: skip
    values["poll.json"] = [p["poll"] for p in values["post.json"] if p["poll"] is not None]
    values["post-history-point.json"] = [pt for series in values["post-history.json"]
                                         for pt in series]  # fmt: skip
    return values


def test_a_real_pass_leaves_nothing_the_schemas_refuse(written: dict[str, list[Any]]) -> None:
    assert written["problems"] == []


@pytest.mark.parametrize("name", VALUE_SCHEMAS)
def test_each_schema_accepts_what_a_real_pass_writes(
    name: str, written: dict[str, list[Any]]
) -> None:
    assert written[name], f"the passes wrote no value for {name}"
    for value in written[name]:
        assert errors_of(name, value) == [], value


def test_a_real_pass_fills_the_nullable_fields_both_ways(written: dict[str, list[Any]]) -> None:
    """The values above are not all-null: images, retry_after and a failure are there."""
    assert any(m["image"] for m in written["media-item.json"])
    assert any(m["thumbnail"] for m in written["media-item.json"])
    [status] = written["status.json"]
    assert status["channels"]["no_such_channel"]["retry_after"] is not None
    assert status["channels"]["itatmisis"]["retry_after"] is None


# --- the check every Redis test gets (conftest.py) -----------------------------------------------


@pytest.mark.foreign_values  # this test leaves wrong values on purpose
def test_the_database_check_names_each_wrong_key_and_skips_what_the_test_planted(
    redis_url: str,
) -> None:
    with redis.Redis.from_url(redis_url) as tool, PlantingRedis.from_url(redis_url) as test:
        stats = {**examples()["stats.json"], "subscribers_count": "5500"}
        tool.set("tg:channel:itam_jobs:stats", json.dumps(stats))
        tool.zadd("tg:channel:history", {b'{"t":1,"subscribers":1}': 1})
        tool.hset("tg:channel:post_history", mapping={"x1": "[]", "1556": "not json"})
        tool.set("tg:channels", "itatmisis")  # not JSON
        tool.rpush("tg:status", "{}")  # not a string
        tool.set("tg:something_new", "{}")
        tool.set("tg:media:1:x", b"\xff\xd8\xff")  # image bytes: not checked
        tool.set("other:app:key", "not ours")
        test.set("tg:channel:stats", '{"title": "what an old version left"}')  # planted
        test.set("tg:peer:1:itatmisis", '{"id": "planted"}')
        tool.set("tg:peer:1:itatmisis", '{"id": "then changed"}')  # the tool wrote after
        assert check_database(tool, planted=test.planted) == [
            'tg:channel:history member {"t":1,"subscribers":1}: (the value): '
            "'posts' is a required property",
            "tg:channel:itam_jobs:stats: ['subscribers_count']: '5500' is not of type 'integer'",
            "tg:channel:post_history field 1556: not JSON (Expecting value: line 1 column 1 "
            "(char 0))",
            "tg:channel:post_history: field 'x1' is not a post id",
            "tg:channels: not JSON (Expecting value: line 1 column 1 (char 0))",
            "tg:peer:1:itatmisis: (the value): 'access_hash' is a required property",
            "tg:peer:1:itatmisis: ['id']: 'then changed' is not of type 'integer'",
            "tg:something_new: no schema knows this key (add one to docs/schema/)",
            "tg:status: a Redis list, expected a string",
        ]
        assert "tg:channel:itam_jobs:stats" not in " ".join(
            check_database(tool, skip=frozenset({"tg:channel:itam_jobs:stats"}))
        )
