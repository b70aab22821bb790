"""The JSON Schemas of docs/schema/, and a check of everything a Redis database holds against
them (the suite runs it after every test that used Redis: see conftest.py)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import redis
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

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
    (re.compile(r"tg:channel:[^:]+:post_history_last"), "hash", "post-history-point.json"),
    (re.compile(r"tg:status"), "string", "status.json"),
    (re.compile(r"tg:channels"), "string", "channels.json"),
    (re.compile(r"tg:peer:[^:]+:[^:]+"), "string", "peer.json"),
    (re.compile(r"tg:last_update"), "string", "common.json#/$defs/time"),
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
    return sorted(SCHEMA_DIR.glob("*.json"))


@cache
def registry() -> Registry[Any]:
    """Every schema file under its `$id` (relative ids: `$ref`s resolve between the files,
    offline)."""
    resources = []
    for path in schema_files():
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for `name`: a file's `$id`, optionally with a `#/…` pointer into it."""
    return Draft202012Validator({"$ref": name}, registry=registry())


def errors_of(name: str, value: Any) -> list[str]:
    """Every way `value` breaks the schema `name`, one line each: where, and what."""
    found = sorted(validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [describe(e) for e in found]


def describe(error: ValidationError) -> str:
    where = "".join(f"[{p!r}]" for p in error.absolute_path) or "(the value)"
    return f"{where}: {error.message}"


def schema_of(key: str) -> tuple[str, str | None] | None:
    """(Redis type, schema) of a key the tool writes; None for a key it does not know."""
    for pattern, kind, schema in KEY_SCHEMAS:
        if pattern.fullmatch(key):
            return kind, schema
    return None


def check_database(
    client: redis.Redis,
    skip: frozenset[str] = frozenset(),
    planted: dict[bytes, bytes | None] | None = None,
) -> list[str]:
    """Every problem of the `tg:` keys of `client`'s database, one line each, naming the key.

    `skip`: keys not to check (a test's `foreign_values` marker); `planted`: what the test
    wrote itself (see PlantingRedis): a key that still holds it is skipped. Keys that do not
    start with `tg:` are not ours; a `tg:` key of no known shape is a problem (a new key
    needs a schema).
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
            problems.extend(f"{key}{label}: {p}" for p in _check(schema, value))
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


def _check(schema: str, raw: Any) -> list[str]:
    if isinstance(raw, dict):  # a stream entry's fields: strings, not JSON
        try:
            fields = {k.decode("utf-8"): v.decode("utf-8") for k, v in raw.items()}
        except UnicodeDecodeError:
            return ["not UTF-8"]
        return errors_of(schema, fields)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8"]
    if schema.startswith("common.json#"):  # a plain string, not JSON
        value: Any = text
    else:
        try:
            value = json.loads(text)
        except ValueError as e:
            return [f"not JSON ({e})"]
    return errors_of(schema, value)
