"""Control characters never printed raw: JSON on stdout, log lines; stored data unchanged."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import cli, escapes
from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app, setup_logging
from itam_tgstats.store.keys import POSTS_KEY, STATS_KEY
from tests.channels import post
from tests.faketg import FakeTelegram
from tests.helpers import source_factory

# Every character the contract names, and the ones around the ranges' edges.
CONTROLS = (
    [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
)  # fmt: skip
# Left as they are: printable text, emoji joined by ZWJ, the characters next to the ranges.
KEPT = "ИТ 🚀 👨\u200d👩\u200d👧 é \xa0 \u061b \u2027 \u202f \u2065 \u206a"
HOSTILE = "\x9b31mRED \x1b[2J \u202egnp.exe\u202c \u2066x\u2069 \u061c\u200e\u200f a\u2028b \x7f"


def raw_controls(text: str) -> list[str]:
    return [c for c in text if c in CONTROLS]


def test_dumps_escapes_every_control_and_parses_back_the_same() -> None:
    data = {"title": "".join(CONTROLS), "kept": KEPT, "key\x9b\u202e": [HOSTILE]}
    for ascii_only in (False, True):
        text = escapes.dumps(data, ascii_only=ascii_only)
        assert raw_controls(text.replace("\n", "")) == []
        assert text.startswith('{\n  "title": "\\u0000')  # indented lines stay
        assert json.loads(text) == data
    text = escapes.dumps(data)
    assert KEPT in text  # nothing else escaped
    assert "\\u009b31mRED \\u001b[2J \\u202egnp.exe\\u202c" in text
    assert "\\u2066x\\u2069 \\u061c\\u200e\\u200f a\\u2028b \\u007f" in text


def test_escape_controls_can_keep_newlines() -> None:
    assert escapes.escape_controls("a\nb\x9b") == "a\\u000ab\\u009b"
    assert escapes.escape_controls("a\nb\x9b\r", keep_newlines=True) == "a\nb\\u009b\\u000d"


def formatted(level: str = "INFO") -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(escapes.EscapingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.escapes")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)
    return logger, stream


def test_log_lines_escape_what_they_quote() -> None:
    logger, stream = formatted()
    logger.warning("channel %s failed: %s", "\u202eevil\u202c", "line\nforged ERROR \x9b2J")
    assert stream.getvalue() == (
        "WARNING channel \\u202eevil\\u202c failed: line\\u000aforged ERROR \\u009b2J\n"
    )


def test_a_traceback_keeps_its_lines_and_escapes_the_rest() -> None:
    logger, stream = formatted()
    try:
        raise ValueError("bad \x1b[31m title \u2066")
    except ValueError:
        logger.exception("reading @%s", "x\x85y")
    text = stream.getvalue()
    assert text.startswith("ERROR reading @x\\u0085y\nTraceback (most recent call last):\n")
    assert "ValueError: bad \\u001b[31m title \\u2066\n" in text
    assert raw_controls(text.replace("\n", "")) == []


def test_the_cli_logs_through_the_escaping_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO")
        logging.getLogger("itam_tgstats.test").warning("title %s", HOSTILE)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = stream.getvalue()
    assert line.endswith(
        "WARNING itam_tgstats.test: title " + escapes.escape_controls(HOSTILE) + "\n"
    )
    assert raw_controls(line[:-1]) == []


# --- end to end: what collect stores, what is printed --------------------------------------


@pytest.fixture
def hostile_tg(fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> FakeTelegram:
    """The stand-in channel titled and posting with control characters."""
    channel = fake_tg.channels[0]
    channel.title = f"ITAM {HOSTILE}"
    channel.messages.append(post(channel.id, 2_000, f"post {HOSTILE}"))
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    return fake_tg


def test_stored_data_keeps_the_real_characters_and_printed_json_escapes_them(
    env: dict[str, str], hostile_tg: FakeTelegram, rdb: redis.Redis
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(rdb.get(STATS_KEY) or "")
    posts = json.loads(rdb.get(POSTS_KEY) or "")
    assert stats["title"] == f"ITAM {HOSTILE}"  # stored as they are
    assert posts[0]["text"] == f"post {HOSTILE}"
    for args in (["show", "--json"], ["collect", "--dry-run"]):
        printed = runner.invoke(app, args)
        assert printed.exit_code == 0, printed.stderr
        assert raw_controls(printed.stdout.replace("\n", "")) == [], args
        data: dict[str, Any] = json.loads(printed.stdout)
        assert data["stats"]["title"] == f"ITAM {HOSTILE}"
        assert data["posts"][0]["text"] == f"post {HOSTILE}"
        assert "\\u009b31mRED" in printed.stdout


def test_the_error_line_escapes_what_it_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = cli.fail("channel \u202e@x failed: \x9b2J", 4)
    assert exit_.exit_code == 4
    assert capsys.readouterr().err == "error: channel \\u202e@x failed: \\u009b2J\n"


# --- Unicode format characters: invisible, they hide or disguise text ------------------------

# Zero-width space, non-joiner, joiner (outside an emoji sequence), the marks; word joiner
# and the invisible operators; the byte-order mark; the soft hyphen; tag characters.
FORMAT = (
    [chr(c) for c in range(0x200B, 0x2010)] + [chr(c) for c in range(0x2060, 0x2065)]
    + ["\ufeff", "\xad"] + [chr(c) for c in range(0xE0000, 0xE0080)]
)  # fmt: skip
# Emoji that need their joiner: a family, a profession, a flag, a heart on fire.
JOINED = ["👨\u200d👩\u200d👧", "👩\u200d💻", "🏳\ufe0f\u200d🌈", "❤\ufe0f\u200d🔥",
          "🧑\u200d⚕\ufe0f", "👍🏽\u200d"[:-1]]  # fmt: skip


@pytest.mark.parametrize("char", FORMAT, ids=lambda c: f"U+{ord(c):04X}")
def test_format_characters_are_escaped_in_json_and_logs(char: str) -> None:
    text = f"a{char}b"
    printed = escapes.dumps({"title": text})
    assert char not in printed
    assert json.loads(printed) == {"title": text}  # parsed, the same data
    logger, stream = formatted()
    logger.warning("title %s", text)
    assert char not in stream.getvalue()
    assert "\\u" in stream.getvalue()


def test_a_tag_character_is_escaped_as_a_json_surrogate_pair() -> None:
    assert escapes.escape_controls("x\U000e0041") == "x\\udb40\\udc41"
    assert json.loads('"' + escapes.escape_controls("x\U000e0041") + '"') == "x\U000e0041"


@pytest.mark.parametrize("emoji", JOINED)
def test_the_joiner_inside_an_emoji_sequence_is_kept(emoji: str) -> None:
    assert escapes.escape_controls(f"go {emoji}!") == f"go {emoji}!"


@pytest.mark.parametrize("text", ["a\u200db", "\u200d", "👍 \u200d", "\u200d👍", "a\u200d👍"])
def test_a_joiner_between_other_characters_is_escaped(text: str) -> None:
    assert "\u200d" not in escapes.escape_controls(text)


def test_format_characters_never_reach_the_terminal() -> None:
    from itam_tgstats.commands import dashboard

    assert dashboard.plain("a\u200bb\ufeffc\U000e0041d") == "a\ufffdb\ufffdc\ufffdd"
    assert dashboard.plain("👩\u200d💻") == "👩\u200d💻"
