"""store/keys.py: how a stored value is read back, whatever was planted there."""

from __future__ import annotations

import json
import logging

import pytest

from itam_tgstats.store.keys import MAX_DEPTH, loads_or_text, peer_key


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 900, 1000, 100_000])
def test_json_nested_deeper_than_the_tool_writes_reads_as_missing_with_one_line(
    depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert loads_or_text(nested(depth), "tg:status") is None
    assert [r.getMessage().split(" holds ")[0] for r in caplog.records] == ["tg:status"]


@pytest.mark.parametrize("depth", [1, 5, MAX_DEPTH])
def test_json_as_deep_as_the_tool_could_write_reads_as_itself(depth: int) -> None:
    assert loads_or_text(nested(depth)) == json.loads(nested(depth))


def test_text_that_is_not_json_reads_as_text() -> None:
    assert loads_or_text("not json", "tg:channel:posts") == "not json"
    assert loads_or_text(None) is None


@pytest.mark.parametrize("name", ["ITAtMisis", "itatmisis", "ItAtMiSiS"])
def test_a_peer_key_is_lower_cased(name: str) -> None:
    assert peer_key("12345", name) == "tg:peer:12345:itatmisis"
