"""docs/schema/: valid JSON Schemas, each whole in its file, strict as the contract and open to
new fields; bundled from docs/schema/src/ and up to date; what a real pass writes matches them;
docs/redis-keys.md links them and its examples match them.

(Every other test that uses Redis is checked against them too: see conftest.py. `make
types-check` checks the same files with Ajv and the types generated from them.)"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from jsonschema import Draft202012Validator
from pyrogram.raw import types as T

from itam_tgstats.errors import ChannelsFailed
from tests.channels import media_channel, post, register_files, rich_channel
from tests.conftest import RedisServer
from tests.fakestats import realistic_stats
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass
from tests.schema_cases import (
    DELETE,
    DOC,
    WRONG,
    WRONG_BEYOND_SCHEMA,
    WRONG_IN_PYTHON_ONLY,
    WRONG_TOGETHER,
    changed,
    changed_many,
    complete_post,
    doc_examples,
    examples,
)
from tests.schemas import (
    SCHEMA_DIR,
    PlantingRedis,
    check_database,
    errors_of,
    export_from_env,
    schema_files,
    schema_of,
)

REPO = Path(__file__).resolve().parent.parent
SOURCE_DIR = SCHEMA_DIR / "src"
CODEGEN = SCHEMA_DIR / "codegen" / "tgstats.json"
BUNDLER = REPO / "scripts" / "bundle-schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
VALUE_SCHEMAS = (
    "stats.json", "posts.json", "post.json", "media-item.json", "link-preview.json", "poll.json",
    "status.json", "history-point.json", "post-history.json", "post-history-point.json",
    "post-history-last.json",
    "channels.json", "peer.json", "admin-stats.json", "event.json",
)  # fmt: skip


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / name).read_text()))


def walk(node: Any, *, skip: frozenset[str] = frozenset()) -> Iterator[dict[str, Any]]:
    """Every object inside a schema, the schema itself first (not below the keys `skip`)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in skip:
                yield from walk(value, skip=skip)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, skip=skip)


# --- the files themselves ----------------------------------------------------------------------


def test_the_files_are_what_the_sources_give() -> None:
    """docs/schema/*.json and codegen/ are written by `make schemas` from src/: never by hand."""
    result = subprocess.run(
        [sys.executable, BUNDLER, "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_source_is_a_draft_2020_12_schema_and_common_holds_definitions_only() -> None:
    sources = {path.name: json.loads(path.read_text()) for path in SOURCE_DIR.glob("*.json")}
    assert sorted(sources) == sorted([*VALUE_SCHEMAS, "common.json"])
    for name, schema in sources.items():
        assert schema["$schema"] == DRAFT, name
        Draft202012Validator.check_schema(schema)
    assert "type" not in sources["common.json"]  # so it is no value file of its own


def test_every_value_file_stands_alone() -> None:
    """No `$ref` out of the file and no `$id` to resolve against: a validator takes it as is."""
    assert sorted(path.name for path in schema_files()) == sorted(VALUE_SCHEMAS)
    for path in schema_files():
        schema = load(path.name)
        assert schema["$schema"] == DRAFT, path.name
        Draft202012Validator.check_schema(schema)
        for node in walk(schema, skip=frozenset({"enum", "const", "required"})):
            assert "$id" not in node, path.name
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/$defs/"), (path.name, ref)
                assert ref.removeprefix("#/$defs/") in schema["$defs"], (path.name, ref)


@pytest.mark.parametrize("name", VALUE_SCHEMAS)
def test_plain_jsonschema_validate_takes_each_file_as_it_is(name: str) -> None:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.validate(examples()[name], schema)  # no registry, no base URI
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"not": "this"} if name.endswith("s.json") else [], schema)


def test_the_codegen_file_has_each_object_type_once_under_its_title() -> None:
    schema = json.loads(CODEGEN.read_text())
    Draft202012Validator.check_schema(schema)
    assert set(schema) == {"$schema", "$comment", "title", "description", "$defs"}
    defs = schema["$defs"]
    for title, type_ in defs.items():
        assert type_["title"] == title
        assert type_["type"] == "object"
    # every object value is a type; the arrays are read as arrays of their items' type
    values = {load(name)["title"] for name in VALUE_SCHEMAS if load(name)["type"] == "object"}
    assert values <= set(defs)
    assert {"Post", "MediaItem", "LinkPreview", "Poll", "PostHistoryPoint"} <= set(defs)
    for path in schema_files():  # the same types as the value files, written the same way
        for title, type_ in load(path.name).get("$defs", {}).items():
            assert defs[title] == type_, (path.name, title)


def test_open_to_unknown_fields_and_strict_on_every_field_listed() -> None:
    for path in [*schema_files(), CODEGEN]:
        schema = json.loads(path.read_text())
        for node in walk(schema):
            assert node.get("additionalProperties") is not False, path.name
            assert node.get("unevaluatedProperties") is not False, path.name
        # An object lists every field it always has as required (the rules between fields,
        # under if/then, name some of them again).
        for node in walk(schema, skip=frozenset({"if", "then", "else"})):
            if node.get("type") == "object" and "properties" in node:
                assert set(node.get("required", ())) == set(node["properties"]), (path, node)


def test_a_bundle_keeps_a_use_s_own_rule_beside_the_one_it_refers_to(tmp_path: Path) -> None:
    """A `$ref` with a rule of its own that the target has too keeps both (`allOf`), and a
    source added to src/ is bundled like any other."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "common.json").write_text(
        json.dumps({"$defs": {"count": {"type": "integer", "minimum": 0}}})
    )
    (src / "thing.json").write_text(
        json.dumps(
            {
                "$schema": DRAFT,
                "title": "Thing",
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"$ref": "common.json#/$defs/count", "minimum": 1}},
            }
        )
    )
    code = (
        "import runpy, sys, json, pathlib; ns = runpy.run_path(sys.argv[1]); "
        "b = ns['Bundler'](ns['load_sources'](pathlib.Path(sys.argv[2]))); "
        "print(json.dumps(b.bundle('thing.json')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, BUNDLER, src], capture_output=True, text=True, check=True
    )
    bundled = json.loads(out.stdout)
    assert bundled["properties"]["n"] == {
        "allOf": [{"type": "integer", "minimum": 0}, {"minimum": 1}]
    }
    assert jsonschema.Draft202012Validator(bundled).is_valid({"n": 1})
    assert not jsonschema.Draft202012Validator(bundled).is_valid({"n": 0})


# --- examples: the docs' own, complete ----------------------------------------------------------


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
        assert (DOC.parent / target).exists(), target


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


@pytest.mark.parametrize(
    ("name", "path", "new", "message"),
    WRONG + WRONG_IN_PYTHON_ONLY + WRONG_BEYOND_SCHEMA,
    ids=[
        f"{n}:{'.'.join(map(str, p))}={'-' if v is DELETE else v!r}"
        for n, p, v, _ in WRONG + WRONG_IN_PYTHON_ONLY + WRONG_BEYOND_SCHEMA
    ],
)
def test_each_schema_refuses_a_wrong_value(
    name: str, path: tuple[Any, ...], new: Any, message: str
) -> None:
    problems = errors_of(name, changed(name, path, new))
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    WRONG_TOGETHER,
    ids=[f"{n}:{','.join('.'.join(map(str, p)) for p in c)}" for n, c, _ in WRONG_TOGETHER],
)
def test_each_rule_between_fields_refuses_a_value_that_breaks_it(
    name: str, changes: dict[tuple[Any, ...], Any], message: str
) -> None:
    problems = errors_of(name, changed_many(name, changes))
    assert any(message in p for p in problems), problems


def test_the_wrong_values_are_refused_by_the_file_alone() -> None:
    """The same refusals from `jsonschema.validate(value, schema)`, nothing else given
    (what JSON Schema cannot state aside)."""
    for name, path, new, _ in WRONG + WRONG_IN_PYTHON_ONLY:
        schema = json.loads((SCHEMA_DIR / name).read_text())
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(changed(name, path, new), schema)


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


def url_button(text: str, url: str) -> T.KeyboardInlineButton:
    return T.KeyboardInlineButton(text=text, type=T.InlineButtonTypeUrl(url=url))


def poll_with_results() -> T.MessageMediaPoll:
    """A poll whose results this account sees: 12 and 8 of 20 voters."""

    def text(t: str) -> T.TextWithEntities:
        return T.TextWithEntities(text=t, entities=[])

    # one recent voter each: in layer 229 an empty recent_voters vector corrupts the stream
    return T.MessageMediaPoll(
        poll=T.Poll(
            id=31_017,
            question=text("Куда пойдём?"),
            hash=0,
            answers=[T.PollAnswer(text=text("Хакатон"), option=b"0"),
                     T.PollAnswer(text=text("Митап"), option=b"1")],
        ),
        results=T.PollResults(total_voters=20, results=[
            T.PollAnswerVoters(option=b"0", voters=12, recent_voters=[T.PeerUser(user_id=1)]),
            T.PollAnswerVoters(option=b"1", voters=8, recent_voters=[T.PeerUser(user_id=1)]),
        ]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def written(redis_server: RedisServer) -> dict[str, list[Any]]:
    """Every JSON value two passes leave in Redis, by schema: two channels read (one with
    downloaded images, one with posts minutes old: a forward with a URL button, a poll with
    its results, and admin statistics), one missing (backed off)."""
    fake = FakeTelegram()
    rich = fake.add_channel(rich_channel())
    rich.can_view_stats, rich.stats_dc, rich.stats = True, 4, realistic_stats(4)
    now = int(time.time())
    rich.messages += [
        post(rich.id, 1015, "Fresh", date=now - 600, views=42),
        post(
            rich.id, 1016, "Reposted", date=now - 500,
            fwd_from=T.MessageFwdHeader(
                date=now - 9000, from_id=T.PeerChannel(channel_id=rich.id), channel_post=1001
            ),
            reply_markup=T.ReplyInlineMarkup(rows=[T.KeyboardInlineButtonRow(buttons=[
                url_button("Сайт", "https://itam.example/"),
                url_button("x", "javascript:alert(1)"),  # not kept
            ])]),
        ),
        post(rich.id, 1017, "", date=now - 400, media=poll_with_results()),
    ]  # fmt: skip
    register_files(fake, fake.add_channel(media_channel()))
    settings = make_settings(
        fake,
        redis_server.url,
        TG_CHANNEL_USERNAME="itatmisis, itam_media, no_such_channel",
        TG_MEDIA_DOWNLOAD="small",
        TG_POSTS_COUNT="10",
    )
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
        for _ in range(2):  # the second pass skips the missing channel (its retry_after)
            with pytest.raises(ChannelsFailed):
                run_pass(settings, fake)
        values: dict[str, list[Any]] = {name: [] for name in VALUE_SCHEMAS}
        # the whole database, as the hook does (and exported with the rest, when asked)
        values["problems"] = check_database(client, export=export_from_env())
        for raw_key in client.scan_iter(match=b"tg:*"):
            key = raw_key.decode()
            kind, schema = schema_of(key) or ("", None)
            if schema is None or "#" in schema:  # not JSON
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
    posts = written["post.json"]
    assert any(p["buttons"] == [[{"text": "Сайт", "url": "https://itam.example/"}]] for p in posts)
    assert {"title": "IT at MISIS", "link": "https://t.me/itatmisis/1001"} in [
        p["forwarded_from"] for p in posts
    ]
    assert {p["total_voters"] for p in written["poll.json"]} == {None, 20}
    [status] = written["status.json"]
    assert status["channels"]["no_such_channel"]["retry_after"] is not None
    assert status["channels"]["itatmisis"]["retry_after"] is None
    assert status["channels"]["itatmisis"]["admin_stats_at"] is not None
    assert status["channels"]["itam_media"]["admin_stats_at"] is None


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
            "tg:channel:post_history field x1: (the value): [] should be non-empty",
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
