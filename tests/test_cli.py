"""The CLI: exact exit codes and messages, no secret in any output, show/--json/--check."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from pyrogram import raw
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats import runner as runner_module
from itam_tgstats.cli import app
from itam_tgstats.store.keys import LAST_UPDATE_KEY, LOCK_KEY, STATS_KEY, STATUS_KEY
from itam_tgstats.telegram import client as telegram
from tests.conftest import FAKE_API_HASH, free_port
from tests.faketg import FakeTelegram
from tests.helpers import snapshot_bytes, source_factory, status

runner = CliRunner()


@pytest.fixture
def cli_env(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A valid configuration, with `collect` talking to the stand-in Telegram."""
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    return env


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_no_secrets(result: Any, env: dict[str, str]) -> None:
    for secret in (env["TG_SESSION_STRING"], env["TG_API_HASH"]):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_collect_success_exits_0_with_empty_stdout(
    cli_env: dict[str, str], rdb: redis.Redis
) -> None:
    result = invoke("collect")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert rdb.exists(STATS_KEY) == 1
    assert_no_secrets(result, cli_env)


def test_collect_without_configuration_exits_2_saying_what_to_set(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING"):
        monkeypatch.delenv(name)
    result = invoke("collect")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: TG_API_ID is not set (get it at https://my.telegram.org/apps); "
        "TG_API_HASH is not set (get it at https://my.telegram.org/apps); "
        "TG_SESSION_STRING is not set: mint one with `tgstats session`\n"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TG_POSTS_COUNT", "500", "TG_POSTS_COUNT must be an integer from 1 to 100, got '500'"),
        (
            "TG_ADMIN_STATS_HOURS",
            "200",
            "TG_ADMIN_STATS_HOURS must be an integer from 0 to 168, got '200'",
        ),
    ],
)
def test_bad_value_exits_2_before_any_network_call(
    cli_env: dict[str, str],
    fake_tg: FakeTelegram,
    rdb: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    result = invoke("collect")
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert fake_tg.calls == [] and rdb.dbsize() == 0


def test_revoked_session_exits_3(cli_env: dict[str, str], fake_tg: FakeTelegram) -> None:
    fake_tg.fail("contacts.ResolveUsername", "AUTH_KEY_UNREGISTERED")
    result = invoke("collect")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "error: the Telegram session is not authorized any more (AUTH_KEY_UNREGISTERED): "
        "mint a new one with `tgstats session` and put it in TG_SESSION_STRING"
    )
    assert "Traceback" not in result.stderr
    assert_no_secrets(result, cli_env)


def test_missing_channel_exits_4_naming_it(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_CHANNEL_USERNAME", "https://t.me/no_such_channel")
    result = invoke("collect")
    assert result.exit_code == 4
    assert result.stderr.splitlines()[-1] == (
        "error: channel @no_such_channel does not exist (USERNAME_NOT_OCCUPIED)"
    )


def test_redis_down_exits_5(
    cli_env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2@127.0.0.1:{port}/0")
    result = invoke("collect")
    assert result.exit_code == 5
    line = result.stderr.splitlines()[-1]
    assert line.startswith(f"error: Redis at 127.0.0.1:{port} db 0 failed while starting the pass")
    assert line.endswith("check REDIS_URL and that Redis is running")
    assert "hunter2" not in result.stderr and fake_tg.calls == []


def test_a_bug_exits_1_with_a_traceback_and_is_recorded(
    cli_env: dict[str, str], rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(telegram, "build_stats", broken)
    result = invoke("collect")
    assert result.exit_code == 1
    # A bug while reading a channel fails that channel: its traceback is in the log, and
    # the pass ends with one line naming it.
    assert "Traceback (most recent call last)" in result.stderr
    assert "ZeroDivisionError: boom" in result.stderr
    line = "unexpected error while reading @itatmisis: ZeroDivisionError: boom"
    assert result.stderr.endswith(f"error: {line}\n")
    st = status(rdb)
    assert st["exit_code"] == 1 and st["last_error"] == line
    assert st["ok"] is False and st["consecutive_failures"] == 1
    assert st["channels"]["itatmisis"]["retry_after"] is None  # a bug of ours: no backoff
    assert rdb.exists(LOCK_KEY) == 0 and rdb.exists(STATS_KEY) == 0


def test_a_bug_in_anything_but_a_channels_answer_propagates_with_its_traceback(
    cli_env: dict[str, str], rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(collect_module, "with_images", broken)
    result = invoke("collect")
    assert result.exit_code == 1
    # The bug itself propagates (the console script prints its traceback), not a crash of
    # our error handling, and no one-line `error:` pretends it was expected.
    assert isinstance(result.exception, ZeroDivisionError)
    assert "error:" not in result.stderr
    st = status(rdb)
    assert st["exit_code"] == 1 and st["last_error"] == "unexpected error: ZeroDivisionError: boom"
    assert rdb.exists(LOCK_KEY) == 0 and rdb.exists(STATS_KEY) == 0


def test_sigterm_mid_pass_exits_143_writes_nothing_and_releases_the_lock(
    cli_env: dict[str, str], fake_tg: FakeTelegram, rdb: redis.Redis
) -> None:
    assert invoke("collect").exit_code == 0
    before = snapshot_bytes(rdb)
    fake_tg.latency = 10
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    result = invoke("collect")
    timer.join()
    assert time.monotonic() - started < 5
    assert result.exit_code == 143
    assert result.stderr.splitlines()[-1] == (
        "error: interrupted by SIGTERM: nothing partial was written"
    )
    assert snapshot_bytes(rdb) == before
    assert rdb.exists(LOCK_KEY) == 0
    assert status(rdb)["exit_code"] == 143


def test_dry_run_prints_json_and_writes_nothing(cli_env: dict[str, str], rdb: redis.Redis) -> None:
    result = invoke("collect", "--dry-run")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"stats", "posts"}
    assert data["stats"]["username"] == "itatmisis" and len(data["posts"]) == 5
    assert rdb.dbsize() == 0
    assert_no_secrets(result, cli_env)


def test_dry_run_skips_while_a_pass_holds_the_lock(
    cli_env: dict[str, str], fake_tg: FakeTelegram, rdb: redis.Redis
) -> None:
    rdb.set(LOCK_KEY, "a-running-pass", ex=60)
    result = invoke("collect", "--dry-run")
    assert result.exit_code == 0 and result.stdout == ""
    assert "another pass holds tg:lock; skipping the dry run" in result.stderr
    assert fake_tg.calls == [] and rdb.get(LOCK_KEY) == "a-running-pass"


def test_dry_run_works_without_redis(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = invoke("collect", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["stats"]["subscribers_count"] == 5500


def test_loop_exits_after_five_failures_in_a_row(
    cli_env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "1")
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr(runner_module, "wait_interval", no_sleep)
    fake_tg.fail("contacts.ResolveUsername", "CHANNEL_PRIVATE", times=5)
    result = invoke("collect", "--loop")
    assert result.exit_code == 4
    # Asked once: the channel failed on its own, so the next four passes leave it alone
    # (each still counts as a failed pass).
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    assert sleeps == [1, 1, 1, 1]
    assert "not asked before" in result.stderr


def test_show_views(cli_env: dict[str, str], rdb: redis.Redis) -> None:
    empty = invoke("show")
    assert empty.exit_code == 0 and "No data yet" in empty.stdout
    missing = invoke("show", "--check")
    assert (missing.exit_code, missing.stdout) == (
        1,
        "stale: no successful update recorded (tg:last_update is missing); no pass has run yet\n",
    )
    assert json.loads(invoke("show", "--json").stdout) == {
        "stats": None,
        "posts": None,
        "last_update": None,
        "status": None,
        "history": [],
        "post_history": {},
        "channels": {
            "itatmisis": {
                "stats": None,
                "posts": None,
                "history": [],
                "post_history": {},
                "admin_stats": None,
            }
        },
        "events": [],
    }

    assert invoke("collect").exit_code == 0
    shown = invoke("show")
    assert shown.exit_code == 0
    assert "IT at MISIS" in shown.stdout and "@itatmisis" in shown.stdout
    assert "subscribers 5500" in shown.stdout and "1014" in shown.stdout
    fresh = invoke("show", "--check")
    assert fresh.exit_code == 0 and fresh.stdout.startswith("ok: last update ")
    data = json.loads(invoke("show", "--json").stdout)
    assert set(data) == {
        "stats", "posts", "last_update", "status", "history", "post_history", "channels",
        "events",
    }  # fmt: skip
    assert data["stats"] == json.loads(rdb.get(STATS_KEY)) and data["status"]["ok"] is True
    assert data["channels"]["itatmisis"]["stats"] == data["stats"]

    rdb.set(LAST_UPDATE_KEY, "2025-01-07T12:15:00+00:00")
    stale = invoke("show", "--check")
    assert stale.exit_code == 1 and stale.stdout.startswith("stale: last update ")


def test_show_needs_no_telegram_settings(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING"):
        monkeypatch.delenv(name)
    result = invoke("show", "--check")
    # exit 1 is also what a crash gives: here it is the freshness verdict, not an exception
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stdout == (
        "stale: no successful update recorded (tg:last_update is missing); no pass has run yet\n"
    )
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["show"], ["show", "--json"], ["show", "--check"], ["--help"]])
def test_show_and_help_never_import_pyrogram(env: dict[str, str], args: list[str]) -> None:
    code = (
        "import sys\n"
        "from itam_tgstats.cli import main\n"
        f"sys.argv = ['tgstats', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('PYROGRAM' if 'pyrogram' in sys.modules else 'CLEAN', file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "CLEAN"


def test_installed_console_script(env: dict[str, str], tmp_path: Path) -> None:
    """The `tgstats` that pip installed, as a subprocess: a .env file in the working dir."""
    script = shutil.which("tgstats") or str(Path(sys.executable).with_name("tgstats"))
    assert Path(script).exists()
    (tmp_path / ".env").write_text(f"TG_API_ID=12345\nTG_API_HASH={FAKE_API_HASH}\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    result = subprocess.run(
        [script, "collect"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    # run by its path (not found on PATH): the hint names that path, to paste as it is
    assert (
        result.stderr == f"error: TG_SESSION_STRING is not set: mint one with `{script} session`\n"
    )
    help_result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert help_result.returncode == 0 and "collect" in help_result.stdout


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "itam_tgstats", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "tgstats 0.1.0\n")


@pytest.mark.parametrize("command", [[], ["collect"], ["show"], ["session"]])
def test_dash_h_is_help(command: list[str]) -> None:
    short = runner.invoke(app, [*command, "-h"])
    assert short.exit_code == 0, short.stderr
    assert short.stdout == runner.invoke(app, [*command, "--help"]).stdout
    assert "-h, --help" in short.stdout


def test_dry_run_holds_the_lock_while_it_talks_to_telegram(
    cli_env: dict[str, str], fake_tg: FakeTelegram, rdb: redis.Redis
) -> None:
    """A cron pass starting meanwhile must skip: one session string, one process at a time."""
    seen: list[str | None] = []
    real = fake_tg.handlers[raw.functions.messages.GetHistory]

    def spy(query: Any, key: bytes) -> Any:
        seen.append(rdb.get(LOCK_KEY))
        return real(query, key)

    fake_tg.handlers[raw.functions.messages.GetHistory] = spy
    result = invoke("collect", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert len(seen) == 1 and seen[0] is not None  # held during the read
    assert rdb.exists(LOCK_KEY) == 0  # and released after
    assert rdb.keys("tg:channel*") == []


def test_lost_lock_is_one_line_exit_4_in_the_cli(
    cli_env: dict[str, str], fake_tg: FakeTelegram, rdb: redis.Redis
) -> None:
    real = fake_tg.handlers[raw.functions.messages.GetHistory]

    def newer_pass_meanwhile(query: Any, key: bytes) -> Any:
        rdb.set(LOCK_KEY, "a-newer-pass")  # ours expired mid-pass; a newer pass took it
        return real(query, key)

    fake_tg.handlers[raw.functions.messages.GetHistory] = newer_pass_meanwhile
    result = invoke("collect")
    assert result.exit_code == 4
    assert result.stderr.splitlines()[-1] == (
        "error: this pass lost tg:lock before writing (the lock expired or Redis lost it): "
        "another pass may have written since; nothing was written"
    )
    assert rdb.exists(STATS_KEY) == 0 and rdb.get(STATUS_KEY) is None
