"""The docs stay in step with the code: every variable and command is documented."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import metadata
from pathlib import Path

from typer.testing import CliRunner

from itam_tgstats.cli import app

REPO = Path(__file__).resolve().parent.parent
VARIABLES = {
    "TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING", "TG_CHANNEL_USERNAME", "REDIS_URL",
    "TG_UPDATE_INTERVAL", "TG_POSTS_COUNT", "LOG_LEVEL", "TG_FLOOD_WAIT_MAX", "TG_TIMEOUT",
    "TG_HISTORY_DAYS", "TG_MEDIA_DOWNLOAD", "TG_POST_HISTORY_DAYS", "TG_EVENTS_MAX",
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
                   "--from-telethon", "--channel", "--retry-now", "--post"):  # fmt: skip
        assert option in readme


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [REPO / name for name in listed if (REPO / name).is_file()]


# Spelled in pieces so that this file does not match itself.
OUTSIDE_MARKERS = ("../" + "shared", "CONTRACT" + ".md")


def test_the_repo_stands_on_its_own() -> None:
    """Nothing points outside the repository (a clone has no spec folder beside it)."""
    outside = [
        f"{path.relative_to(REPO)}"
        for path in tracked_files()
        if path.suffix in {".py", ".md", ".toml", ".yaml", ".txt", ""}
        and path.name != "run"  # .ci/run may know where CI checks out things
        and any(marker in path.read_text(errors="replace") for marker in OUTSIDE_MARKERS)
    ]
    assert outside == []
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(((?!https?://|#)[^)#]+)", readme):
        assert (REPO / target).exists(), target  # every relative link resolves in the clone


def test_every_redis_key_is_documented() -> None:
    source = (REPO / "itam_tgstats" / "store" / "keys.py").read_text()
    keys = set(re.findall(r'"(tg:[a-z_:]+)"', source))
    docs = (REPO / "docs" / "redis-keys.md").read_text()
    assert keys >= {
        "tg:channel:stats",
        "tg:channel:posts",
        "tg:last_update",
        "tg:status",
        "tg:lock",
    }
    assert all(f"`{key}" in docs for key in keys), keys
    for field in ("text_html", "media", "link_preview", "poll", "buttons", "forwarded_from",
                  "edited_at", "author", "thumbnail", "image", "channels"):  # fmt: skip
        assert f"`{field}`" in docs, field


def test_licence_and_package_metadata() -> None:
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    meta = metadata("itam-tgstats")
    assert meta["License-Expression"] == "MIT"
    assert meta["Author"] or meta["Author-email"]
    assert meta.get_all("Project-URL")
