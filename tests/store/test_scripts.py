"""The Lua steps of a pass on planted values: a point is appended only to a well-formed
array (anything else starts the series afresh), and no step GETs a key of another type."""

from __future__ import annotations

import json

import pytest
import redis

from itam_tgstats.store.scripts import (
    ADOPT_HISTORY_SCRIPT,
    APPEND_SERIES_SCRIPT,
    MIRROR_SERIES_SCRIPT,
)

SERIES = "tg:channel:pulse:post_history"
LAST = "tg:channel:pulse:post_history_last"
ORIGINAL = "tg:channel:post_history"
POINT = '{"t":1800000000,"views":5,"reactions":0,"forwards":0,"comments":0}'
LATER = '{"t":1800000900,"views":6,"reactions":0,"forwards":0,"comments":0}'
OLD = '{"t":1799999000,"views":4,"reactions":0,"forwards":0,"comments":0}'
# 1,000 nested brackets.
DEEP = "[" * 1000 + "]" * 1000
NOT_ARRAYS = ["[]", "", "{}", "5", '"[x]"', "null", "[1,2", "x]", "[", "]", DEEP, "[[]]",
              '{"t":1}]', "[" + OLD]  # fmt: skip


def append(rdb: redis.Redis, point: str = POINT) -> None:
    """One pass's series step: post 7 kept, gaining `point`."""
    rdb.eval(APPEND_SERIES_SCRIPT, 2, SERIES, LAST, "0", "1", "7", "1", "7", point, "7", point)


@pytest.mark.foreign_values
@pytest.mark.parametrize("stored", NOT_ARRAYS)
def test_a_point_starts_afresh_a_series_that_is_not_a_well_formed_array(
    rdb: redis.Redis, stored: str
) -> None:
    rdb.hset(SERIES, "7", stored)
    append(rdb)
    assert json.loads(rdb.hget(SERIES, "7") or "") == [json.loads(POINT)]
    append(rdb, LATER)  # and the next one is appended to it
    assert json.loads(rdb.hget(SERIES, "7") or "") == [json.loads(POINT), json.loads(LATER)]


@pytest.mark.foreign_values
def test_a_point_is_appended_to_a_well_formed_array(rdb: redis.Redis) -> None:
    rdb.hset(SERIES, "7", f"[{OLD}]")
    append(rdb)
    assert json.loads(rdb.hget(SERIES, "7") or "") == [json.loads(OLD), json.loads(POINT)]


@pytest.mark.foreign_values
@pytest.mark.parametrize("stored", NOT_ARRAYS)
def test_the_original_series_starts_afresh_too(rdb: redis.Redis, stored: str) -> None:
    stats = '{"channel_id": -1001}'
    rdb.set("tg:channel:stats", stats)
    rdb.set("tg:channel:pulse:stats", stats)
    rdb.hset(ORIGINAL, "7", stored)
    rdb.eval(
        MIRROR_SERIES_SCRIPT, 4, ORIGINAL, SERIES, "tg:channel:stats", "tg:channel:pulse:stats",
        "0", "1", "7", "1", "7", POINT,
    )  # fmt: skip
    assert json.loads(rdb.hget(ORIGINAL, "7") or "") == [json.loads(POINT)]


@pytest.mark.foreign_values
@pytest.mark.parametrize("kind", ["list", "hash", "set"])
def test_the_lua_steps_read_stats_of_another_type_as_missing(rdb: redis.Redis, kind: str) -> None:
    """GET on a list raised inside EXEC: that step failed, the rest was applied."""
    if kind == "list":
        rdb.rpush("tg:channel:stats", "x")
    elif kind == "hash":
        rdb.hset("tg:channel:stats", "a", "b")
    else:
        rdb.sadd("tg:channel:stats", "x")
    rdb.zadd("tg:channel:history", {"p": 1})
    history = "tg:channel:pulse:history"
    rdb.eval(ADOPT_HISTORY_SCRIPT, 3, history, "tg:channel:history", "tg:channel:stats", "-1001")
    assert rdb.exists(history) == 0  # nothing adopted from stats that cannot be read
    rdb.hset(SERIES, "7", f"[{OLD}]")
    rdb.eval(
        MIRROR_SERIES_SCRIPT, 4, ORIGINAL, SERIES, "tg:channel:stats", "tg:channel:pulse:stats",
        "0", "1", "7", "1", "7", POINT,
    )  # fmt: skip
    assert rdb.hgetall(ORIGINAL) == rdb.hgetall(SERIES)  # a copy: the two differ


def at(t: int, views: int = 1) -> str:
    return f'{{"t":{t},"views":{views},"reactions":0,"forwards":0,"comments":0}}'


@pytest.mark.foreign_values
@pytest.mark.parametrize(
    ("stored", "kept"),
    [
        ([1_799_999_000, 1_900_000_000], [1_799_999_000]),  # the last one ahead
        ([1_900_000_000, 1_900_000_100], []),  # all of them
        ([1_700_000_000, 1_800_000_000], [1_700_000_000]),  # one at the same second
    ],
)
def test_points_at_or_after_the_new_one_are_dropped_to_keep_the_series_in_order(
    rdb: redis.Redis, stored: list[int], kept: list[int]
) -> None:
    rdb.hset(SERIES, "7", "[" + ",".join(at(t) for t in stored) + "]")
    append(rdb)
    times = [p["t"] for p in json.loads(rdb.hget(SERIES, "7") or "")]
    assert times == [*kept, 1_800_000_000]
