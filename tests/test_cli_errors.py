"""The CLI's promise of one clear line: --loop's failure rules, logging, hints, health check."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import cli
from itam_tgstats import collect as collect_module
from itam_tgstats import runner as runner_module
from itam_tgstats.cli import app
from itam_tgstats.commands.show import check_freshness
from itam_tgstats.config import Settings, redis_url_problem
from itam_tgstats.errors import SessionError, TelegramError
from tests.conftest import FAKE_API_HASH
from tests.faketg import FakeTelegram
from tests.helpers import source_factory
from tests.test_config import HOSTILE_REDIS_URLS, SECRET

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def loop_with(outcomes: list[BaseException | None]) -> tuple[int, BaseException | None]:
    """Run collect_loop over scripted pass outcomes; (passes run, what it raised)."""
    settings = Settings.from_env(
        {"TG_UPDATE_INTERVAL": "1"}, Path("/dev/null"), need_telegram=False
    )
    runs = 0

    async def one_pass() -> bool:
        nonlocal runs
        outcome = outcomes[runs]
        runs += 1
        if outcome is not None:
            raise outcome
        return True

    async def main() -> None:
        await runner_module.collect_loop(settings, one_pass)

    original = runner_module.wait_interval

    async def no_wait(_seconds: float) -> None:
        return None

    runner_module.wait_interval = no_wait  # type: ignore[assignment]
    try:
        asyncio.run(main())
    except (TelegramError, SessionError) as e:
        return runs, e
    finally:
        runner_module.wait_interval = original  # type: ignore[assignment]
    return runs, None


def test_loop_stops_at_once_on_exit_3() -> None:
    revoked = SessionError("revoked")
    runs, raised = loop_with([revoked, None, None])
    assert (runs, raised) == (1, revoked)


def test_loop_counts_failures_in_a_row_only() -> None:
    fail = TelegramError("down")
    script: list[BaseException | None] = [fail] * 4 + [None] + [fail] * 5 + [None]
    runs, raised = loop_with(script)
    assert (runs, raised) == (10, fail)


@pytest.mark.parametrize(("age", "fresh"), [(1800, True), (1801, False), (1799, True)])
def test_check_cut_off_is_exactly_twice_the_interval(age: int, fresh: bool) -> None:
    now = 1_800_000_000.0
    updated = datetime.fromtimestamp(now - age, tz=UTC).isoformat()
    assert check_freshness({"last_update": updated}, 900, now)[0] is fresh


def test_pyrogram_warnings_are_silent_at_info_and_its_debug_lines_never_show() -> None:
    pyrogram_log = logging.getLogger("pyrogram.session.session")
    for level, warns in (("INFO", False), ("WARNING", False), ("DEBUG", True)):
        cli.setup_logging(level)
        assert pyrogram_log.isEnabledFor(logging.WARNING) is warns, level
        assert not pyrogram_log.isEnabledFor(logging.DEBUG)
        assert not pyrogram_log.isEnabledFor(logging.INFO)
    cli.setup_logging("INFO")


def test_failed_pass_at_info_ends_with_its_one_error_line(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped connections make Pyrogram log reconnect warnings; none reach the person."""
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    fake_tg.drop_on.add("contacts.ResolveUsername")
    fake_tg.fail("contacts.ResolveUsername", "CHANNEL_PRIVATE", times=5)
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "error: channel @itatmisis is private or not readable by this account (CHANNEL_PRIVATE)"
    )
    assert not [line for line in lines if "pyrogram" in line.lower()]


def test_login_at_debug_prints_no_api_hash(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "DEBUG",
        "TG_API_ID": "12345",
        "TG_API_HASH": FAKE_API_HASH,
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.fake_tgstats", "session", "--phone", "+70000000001"],
        input="12345\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Logged in." in result.stderr
    assert FAKE_API_HASH not in result.stderr and FAKE_API_HASH not in result.stdout
    # DEBUG was on (our own debug lines show), and still nothing printed the hash
    assert "DEBUG itam_tgstats.telegram.login: connecting to Telegram to log in" in result.stderr


def test_hint_names_the_command_as_the_person_ran_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the README's set-up, `tgstats` is not on PATH: hints say `.venv/bin/tgstats`."""
    monkeypatch.setattr(sys, "argv", [".venv/bin/tgstats", "collect"])
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.invocation() == ".venv/bin/tgstats"
    shim = tmp_path / "tgstats"
    shim.write_text("#!/bin/sh\n")
    shim.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(shim), "collect"])
    assert cli.invocation() == "tgstats"


def test_env_example_copied_as_is_names_all_three_required_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    for name in ("TG_API_ID", "TG_API_HASH", "TG_SESSION_STRING", "REDIS_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text((REPO / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: TG_API_ID is not set (get it at https://my.telegram.org/apps); "
        "TG_API_HASH is not set (get it at https://my.telegram.org/apps); "
        "TG_SESSION_STRING is not set: mint one with `tgstats session`\n"
    )


@pytest.mark.parametrize("command", [["collect"], ["show", "--check"]])
def test_env_file_that_is_not_utf8_exits_2_naming_it(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / ".env").write_bytes("TG_CHANNEL_USERNAME=канал\n".encode("cp1251"))
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / '.env'} is not UTF-8 text: save it as UTF-8\n"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "redis://127.0.0.1/0?socket_timeout=abc",
            "REDIS_URL is not accepted by redis-py: "
            "Invalid value for 'socket_timeout' in connection URL.",
        ),
        (
            "redis://127.0.0.1/0?foo=bar",
            "REDIS_URL has an option redis-py does not know (not shown: it may be a piece of "
            "a password; percent-encode & = # in a password)",
        ),
    ],
)
def test_redis_options_redis_py_rejects_exit_2(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    for command in (["collect"], ["show", "--check"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr == f"error: {message}\n"


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0?password=s3cr3t-pw",
        "redis://default:s3cr3t@pw@127.0.0.1:{port}/0",
    ],
)
def test_redis_password_never_printed_by_the_health_check(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from tests.conftest import free_port

    port = free_port()
    monkeypatch.setenv("REDIS_URL", url.format(port=port))
    result = runner.invoke(app, ["show", "--check"])
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: Redis at 127.0.0.1:{port} db 0 failed while reading")
    assert "s3cr3t" not in result.stderr and "pw@" not in result.stderr
    assert "s3cr3t" not in result.stdout


def test_huge_timeout_is_a_configuration_error_not_a_redis_one(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> None:
    monkeypatch.setenv("TG_TIMEOUT", "1e17")
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 2
    assert result.stderr == "error: TG_TIMEOUT must be an integer from 1 to 86400, got '1e17'\n"
    assert rdb.dbsize() == 0


def test_garbage_from_the_network_is_one_line_in_collect(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> None:
    """No traceback of Pyrogram's background tasks reaches the person, only the error line."""
    from itam_tgstats.telegram.client import TelegramSource
    from tests.telegram.test_client import EchoingGarbage

    monkeypatch.setattr(
        collect_module,
        "default_source_factory",
        lambda settings: TelegramSource(settings, protocol_factory=EchoingGarbage),
    )
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 4
    assert result.stderr.splitlines()[-1] == (
        "error: cannot reach Telegram: the connection could not be set up (no answer in time)"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", HOSTILE_REDIS_URLS)
def test_no_secret_of_a_redis_url_in_any_output(
    env: dict[str, str],
    fake_tg: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    """Whatever a password typed into REDIS_URL as it is looks like, neither the health check
    nor a pass prints any piece of it (the URL names a port where nothing listens)."""
    from tests.conftest import free_port

    port = free_port()
    monkeypatch.setenv("REDIS_URL", url.replace("@h:1/", f"@127.0.0.1:{port}/").replace(
        "@h", f"@127.0.0.1:{port}").replace("//h", f"//127.0.0.1:{port}"))  # fmt: skip
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    for command in (["show", "--check"], ["show"], ["collect"], ["collect", "--dry-run"]):
        result = runner.invoke(app, command)
        # a dry run reads Telegram without Redis (its warning names Redis)
        assert result.exit_code in ((0, 2) if "--dry-run" in command else (2, 5)), command
        assert SECRET not in result.stdout and SECRET not in result.stderr, command
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            assert SECRET not in "".join(traceback.format_exception(result.exception))
        if command == ["collect"]:
            assert fake_tg.calls == []  # Redis is checked first: Telegram never heard of it


@pytest.mark.parametrize("url", [u for u in HOSTILE_REDIS_URLS if redis_url_problem(u) is None])
def test_no_secret_of_a_redis_url_in_a_store_error(url: str) -> None:
    """The URLs the configuration takes (the others never reach the store)."""
    from itam_tgstats.errors import StoreError
    from itam_tgstats.store import Store

    async def read() -> None:
        store = Store(url.replace("h:1/", "127.0.0.1:1/"))
        try:
            await store.read_all(["itatmisis"])
        finally:
            await store.aclose()

    try:
        asyncio.run(read())
    except StoreError as e:
        text = "".join(traceback.format_exception(e))
        assert SECRET not in text


@pytest.mark.parametrize("secret", [FAKE_API_HASH, "abcdef0123456789abcdef0123456789"])
def test_an_api_hash_as_a_channel_name_exits_2_without_echo(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("TG_CHANNEL_USERNAME", f"itatmisis, {secret}")
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    for command in (["collect"], ["show", "--check"], ["show", "--json"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr == (
            "error: TG_CHANNEL_USERNAME item 2 looks like an API hash or session string, "
            "not a channel name\n"
        )
        assert secret not in result.stdout
    assert fake_tg.calls == []
