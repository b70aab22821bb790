"""`tgstats show`'s status lines: a wrapped line keeps its indent, counts read right, and an
empty NO_COLOR keeps the colour (no-color.org: only a value that is set and not empty)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import redis
from rich.console import Console

from itam_tgstats.commands import dashboard
from tests.commands.test_show import NOW, seeded_view, spawn_show, store_view

LONG_ERROR = (
    "Telegram refused the request for @itatmisis: 400 CHANNEL_INVALID, and a good deal more "
    "said about it, so that this line cannot fit in sixty columns however it is cut"
)


def status_lines(view: dict[str, Any], width: int) -> list[str]:
    out = io.StringIO()
    dashboard.render(view, Console(file=out, width=width, color_system=None), 900, NOW)
    lines = out.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("status:"))
    last = next(i for i, line in enumerate(lines) if line.endswith(" in a row"))
    return lines[first : last + 1]


def failing(failures: Any) -> dict[str, Any]:
    return seeded_view(
        status={"ok": False, "last_success_at": "2025-12-30T00:00:00+00:00",
                "last_failure_at": "2025-12-31T23:45:00+00:00", "last_error": LONG_ERROR,
                "consecutive_failures": failures, "retry_after": None},
    )  # fmt: skip


def test_a_wrapped_status_line_keeps_its_indent() -> None:
    lines = status_lines(failing(3), width=60)
    assert lines[0] == "status: last success 2025-12-30T00:00:00+00:00"
    failure = lines[1:-1]
    assert len(failure) >= 3  # the error wrapped over several lines …
    assert all(line.startswith(" " * 8) and line[8] != " " for line in failure)  # … each indented
    assert all(len(line) <= 60 for line in lines)
    words = " ".join(line.strip() for line in failure)
    assert words == f"last failure 2025-12-31T23:45:00+00:00: {LONG_ERROR}"
    assert lines[-1] == "        3 failed passes in a row"


@pytest.mark.parametrize(
    ("failures", "said"),
    [(1, "1 failed pass in a row"), (2, "2 failed passes in a row"),
     (11, "11 failed passes in a row")],
)  # fmt: skip
def test_the_count_of_failed_passes_reads_right(failures: int, said: str) -> None:
    assert status_lines(failing(failures), width=200)[-1] == f"        {said}"


def test_an_empty_no_color_keeps_the_colour(env: dict[str, str], rdb: redis.Redis) -> None:
    store_view(rdb, seeded_view())
    assert "\x1b[" in spawn_show({"NO_COLOR": ""})
    assert "\x1b[" not in spawn_show({"NO_COLOR": "0"})  # any value but empty: no colour


def test_status_is_said_once_even_when_its_first_line_wraps() -> None:
    lines = status_lines(failing(2), width=40)
    assert [line.startswith("status:") for line in lines].count(True) == 1
    assert lines[1].startswith(" " * 8) and lines[1].strip()  # the first part's rest, indented
    assert all(len(line) <= 40 for line in lines)
