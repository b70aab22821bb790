"""The JSON Schemas of docs/schema/, and a check of everything a Redis database holds against
them (the suite runs it after every test that used Redis: see conftest.py).

The files checked against are the ones readers get: docs/schema/<name>.json, each whole on its
own (written by scripts/bundle-schemas from docs/schema/src/), used exactly as a reader would:
`Draft202012Validator(schema)`, no registry. What JSON Schema cannot say (the order of a
series, of reactions) is checked beside it (`beyond_schema`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import redis
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"

# Key pattern → (Redis type, schema of each JSON value). A name is `tg:channel:<name>:…`;
# the first channel's original keys have none. `None`: not JSON (checked otherwise or not).
_NAME = r"(?:[^:]+:)?"
KEY_SCHEMAS: list[tuple[re.Pattern[str], str, str | None]] = [
    (re.compile(rf"tg:channel:{_NAME}stats"), "string", "stats.json"),
    (re.compile(rf"tg:channel:{_NAME}posts"), "string", "posts.json"),
    (re.compile(rf"tg:channel:{_NAME}history"), "zset", "history-point.json"),
    (re.compile(rf"tg:channel:{_NAME}post_history"), "hash", "post-history.json"),
    # each kept post's last point (the pass reads these, not the whole series)
    (re.compile(r"tg:channel:[^:]+:post_history_last"), "hash", "post-history-last.json"),
    (re.compile(rf"tg:channel:{_NAME}admin_stats"), "string", "admin-stats.json"),
    (re.compile(r"tg:status"), "string", "status.json"),
    (re.compile(r"tg:channels"), "string", "channels.json"),
    (re.compile(r"tg:peer:[^:]+:[^:]+"), "string", "peer.json"),
    # not JSON: a time, as the stats' collected_at
    (re.compile(r"tg:last_update"), "string", "stats.json#/properties/collected_at"),
    (re.compile(r"tg:media:[^:]+:[^:]+"), "string", None),  # raw image bytes
    (re.compile(r"tg:lock"), "string", None),  # a pass's random token
    (re.compile(r"tg:events"), "stream", "event.json"),  # each entry's fields
]
POST_ID = re.compile(r"[1-9][0-9]*")


# Commands by which a test plants a value itself (the keys they write are their first argument;
# MSET's every other one).
_WRITES = frozenset(
    {"SET", "SETEX", "PSETEX", "SETNX", "GETSET", "APPEND", "ZADD", "HSET", "HMSET", "HSETNX",
     "RPUSH", "LPUSH", "SADD", "RESTORE"}
)  # fmt: skip


class PlantingRedis(redis.Redis):
    """The tests' own client (`rdb`): remembers what the test wrote itself.

    `planted`: key → its DUMP right after the test's last write to it. A key still holding
    exactly that was written by the test, not by the tool, and is not checked: a test may
    plant what an older version, another program or a corruption left.
    """

    planted: dict[bytes, bytes | None]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        result = super().execute_command(*args, **options)
        command = str(args[0]).upper() if args else ""
        if command in _WRITES or command in {"MSET", "MSETNX"}:
            keys = args[1::2] if command.startswith("MSET") else args[1:2]
            if not hasattr(self, "planted"):
                self.planted = {}
            for key in keys:
                name = key if isinstance(key, bytes) else str(key).encode()
                self.planted[name] = self.dump(name)
        return result


def schema_files() -> list[Path]:
    """The value schemas readers use (docs/schema/*.json; their sources are in src/)."""
    return sorted(SCHEMA_DIR.glob("*.json"))


@cache
def load_schema(file: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / file).read_text(encoding="utf-8")))


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for `name`: a file of docs/schema/ as it is (no registry), or, with a
    `#/…` pointer, a part of one."""
    file, _, pointer = name.partition("#")
    validator = Draft202012Validator(load_schema(file))
    if pointer:
        part: Any = load_schema(file)
        for step in pointer.strip("/").split("/"):
            part = part[step]
        validator = validator.evolve(schema=part)
    return validator


def errors_of(name: str, value: Any) -> list[str]:
    """Every way `value` breaks the schema `name` (or the contract where JSON Schema cannot
    say it), one line each: where, and what."""
    found = sorted(validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [describe(e) for e in found] + beyond_schema(name, value)


def beyond_schema(name: str, value: Any) -> list[str]:
    """What the contract asks that JSON Schema cannot state: a series in time order, and a
    post's reactions by count (largest first), then key, summing to reactions_total."""
    problems: list[str] = []
    if name == "post-history.json" and isinstance(value, list):
        times = [p.get("t") for p in value if isinstance(p, dict)]
        if all(isinstance(t, int) for t in times) and times != sorted(set(times)):
            problems.append(f"(the value): t not strictly increasing: {times}")
    posts = value if name == "posts.json" and isinstance(value, list) else [value]
    if name in ("posts.json", "post.json"):
        for index, post in enumerate(posts):
            reactions = post.get("reactions") if isinstance(post, dict) else None
            if not isinstance(reactions, dict):
                continue
            where = f"[{index}]['reactions']" if name == "posts.json" else "['reactions']"
            counts = list(reactions.items())
            if counts != sorted(counts, key=reaction_order):
                problems.append(f"{where}: not by count (largest first), then key: {reactions}")
            counted = [c for c in reactions.values() if isinstance(c, int)]
            if len(counted) == len(reactions) and post.get("reactions_total") != sum(counted):
                problems.append(f"{where}: do not sum to reactions_total")
    return problems


def reaction_order(item: tuple[str, Any]) -> tuple[Any, str]:
    """How a post's reactions are written: by count, largest first, then by key."""
    key, count = item
    return (-count if isinstance(count, int) else 0, key)


def describe(error: ValidationError) -> str:
    where = "".join(f"[{p!r}]" for p in error.absolute_path) or "(the value)"
    return f"{where}: {error.message}"


def schema_of(key: str) -> tuple[str, str | None] | None:
    """(Redis type, schema) of a key the tool writes; None for a key it does not know."""
    for pattern, kind, schema in KEY_SCHEMAS:
        if pattern.fullmatch(key):
            return kind, schema
    return None


Export = Callable[[str, str, Any], None]
EXPORT_ENV = "TGSTATS_EXPORT_VALUES"


class ValueExport:
    """Every valid JSON value checked, appended once to `<directory>/values-<pid>.jsonl` as
    `{"schema", "key", "value"}`: what `make types-check` decodes with the generated types."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"values-{os.getpid()}.jsonl"
        self.seen: set[str] = set()

    def __call__(self, key: str, schema: str, value: Any) -> None:
        identity = json.dumps([schema, value], sort_keys=True, ensure_ascii=False)
        if identity in self.seen:
            return
        self.seen.add(identity)
        line = json.dumps({"schema": schema, "key": key, "value": value}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


@cache
def export_from_env() -> ValueExport | None:
    """The export `TGSTATS_EXPORT_VALUES` (a directory) asks for; None when unset."""
    directory = os.environ.get(EXPORT_ENV)
    return ValueExport(Path(directory)) if directory else None


def check_database(
    client: redis.Redis,
    skip: frozenset[str] = frozenset(),
    planted: dict[bytes, bytes | None] | None = None,
    export: Export | None = None,
) -> list[str]:
    """Every problem of the `tg:` keys of `client`'s database, one line each, naming the key.

    `skip`: keys not to check (a test's `foreign_values` marker); `planted`: what the test
    wrote itself (see PlantingRedis): a key that still holds it is skipped. Keys that do not
    start with `tg:` are not ours; a `tg:` key of no known shape is a problem (a new key
    needs a schema). `export` receives (key, schema, value) of each valid JSON value.
    """
    problems: list[str] = []
    for raw_key in sorted(client.scan_iter(match=b"tg:*", count=1000)):
        key = raw_key.decode("utf-8", "replace")
        if key in skip:
            continue
        if planted and raw_key in planted and client.dump(raw_key) == planted[raw_key]:
            continue
        known = schema_of(key)
        if known is None:
            problems.append(f"{key}: no schema knows this key (add one to docs/schema/)")
            continue
        kind, schema = known
        actual = client.type(raw_key).decode()
        if actual != kind:
            problems.append(f"{key}: a Redis {actual}, expected a {kind}")
            continue
        if schema is None:
            continue
        for label, value in _values(client, raw_key, kind):
            problems.extend(f"{key}{label}: {p}" for p in _check(key, schema, value, export))
        if kind == "hash":
            problems.extend(
                f"{key}: field {field!r} is not a post id"
                for field in (f.decode("utf-8", "replace") for f in client.hkeys(raw_key))
                if not POST_ID.fullmatch(field)
            )
    return problems


def _values(client: redis.Redis, key: bytes, kind: str) -> list[tuple[str, Any]]:
    """(label, raw value) of each JSON value stored under `key` (a stream: each entry's
    fields)."""
    if kind == "stream":
        return [(f" entry {i.decode()}", fields) for i, fields in client.xrange(key)]
    if kind == "string":
        value = client.get(key)
        return [("", value)] if value is not None else []
    if kind == "zset":
        return [(f" member {m.decode('utf-8', 'replace')}", m) for m in client.zrange(key, 0, -1)]
    return [(f" field {f.decode('utf-8', 'replace')}", v) for f, v in client.hgetall(key).items()]


def _check(key: str, schema: str, raw: Any, export: Export | None) -> list[str]:
    if isinstance(raw, dict):  # a stream entry's fields: strings, not JSON
        try:
            fields = {k.decode("utf-8"): v.decode("utf-8") for k, v in raw.items()}
        except UnicodeDecodeError:
            return ["not UTF-8"]
        problems = errors_of(schema, fields)
        if export is not None and not problems:
            export(key, schema, fields)
        return problems
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8"]
    if "#" in schema:  # a plain string, not JSON
        return errors_of(schema, text)
    try:
        value = json.loads(text)
    except ValueError as e:
        return [f"not JSON ({e})"]
    problems = errors_of(schema, value)
    if export is not None and not problems:
        export(key, schema, value)
    return problems
