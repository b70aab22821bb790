"""The docs stay in step with the code: every variable and command is documented."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from itam_tgstats.cli import app

REPO = Path(__file__).resolve().parent.parent
VARIABLES = {
    "TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING", "TG_CHANNEL_USERNAME", "REDIS_URL",
    "TG_UPDATE_INTERVAL", "TG_POSTS_COUNT", "LOG_LEVEL", "TG_FLOOD_WAIT_MAX", "TG_TIMEOUT",
    "TG_HISTORY_DAYS", "TG_MEDIA_DOWNLOAD",
}  # fmt: skip


def test_every_variable_the_code_reads_is_documented() -> None:
    source = (REPO / "itam_tgstats" / "config.py").read_text()
    read = set(re.findall(r'(?:get|integer)\("([A-Z_]+)"', source))
    assert read == VARIABLES
    example = (REPO / ".env.example").read_text()
    assert {
        line.split("=")[0] for line in example.splitlines() if "=" in line and line[0] != "#"
    } == VARIABLES
    readme = (REPO / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in VARIABLES)


def test_every_command_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for command in ("collect", "show", "session"):
        assert f"`tgstats {command}`" in readme
        assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0
    for option in ("--once", "--loop", "--dry-run", "--json", "--check", "--phone", "--write-env",
                   "--from-telethon", "--channel"):  # fmt: skip
        assert option in readme
