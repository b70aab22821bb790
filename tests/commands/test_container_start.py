"""The container's init, its whole start sequence in this process: the configuration checked,
the schedule chosen, the wait for Redis, the pass at start (a real `tgstats collect` against
the stand-in Telegram and the suite's Redis), then a stand-in supercronic; and, on a bad
value, the container that waits, unhealthy, naming it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from itam_tgstats.commands import container, schedule
from itam_tgstats.store.keys import LAST_UPDATE_KEY, STATS_KEY, STATUS_KEY
from tests.conftest import FAKE_API_HASH, RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]
FAKE_SUPERCRONIC = REPO / "tests" / "container" / "fake_supercronic.py"


@dataclass
class World:
    """Where the init's paths point in these tests, and what the stand-ins recorded."""

    run: Path
    shipped: Path
    mounted: Path
    record: Path

    def supercronic(self) -> dict[str, Any] | None:
        """How the stand-in supercronic was started (None: it never was)."""
        if not self.record.exists():
            return None
        found: dict[str, Any] = json.loads(self.record.read_text())
        return found


@pytest.fixture
def world(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The image's layout under tmp_path; `tgstats collect` talks to the stand-in Telegram
    (tests/container/sitecustomize.py, as in scripts/image-check)."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    shipped = tmp_path / "share" / "crontab"
    shipped.parent.mkdir()
    shutil.copy(REPO / "crontab", shipped)
    mounted = tmp_path / "etc" / "crontab"
    mounted.parent.mkdir()
    binary = tmp_path / "bin" / "supercronic"
    binary.parent.mkdir()
    binary.write_text(f"#!{sys.executable}\n" + FAKE_SUPERCRONIC.read_text())
    binary.chmod(0o755)
    monkeypatch.setattr(schedule, "RUN_DIR", run)
    monkeypatch.setattr(schedule, "SHIPPED_CRONTAB", shipped)
    monkeypatch.setattr(schedule, "MOUNTED_CRONTAB", mounted)
    monkeypatch.setattr(schedule, "SUPERCRONIC", str(binary))
    record = tmp_path / "supercronic.json"
    monkeypatch.setenv("FAKE_SUPERCRONIC_RECORD", str(record))
    monkeypatch.setenv("FAKE_SUPERCRONIC_MARKER", str(run / "starting"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'tests' / 'container'}{os.pathsep}{REPO}")
    for name in ("TG_RUN_AT_START", "SUPERCRONIC_ARGS", "TG_UPDATE_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    # The init in this process must not make pytest adopt every orphan of the session.
    monkeypatch.setattr(container, "become_subreaper", lambda: False)
    # A stop signal goes to every process below the init, here pytest: not the suite's Redis.
    theirs = set(container.descendants(os.getpid()))
    real = container.descendants
    monkeypatch.setattr(
        container, "descendants", lambda root: [p for p in real(root) if p not in theirs]
    )
    handlers = {
        s: signal.getsignal(s) for s in (*container.STOP_SIGNALS, *container.IGNORED_SIGNALS)
    }
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    # A watchdog: an init that would wait for ever (a bug) is stopped, and the test fails.
    watchdog = stop_when(lambda: False, timeout=90)
    try:
        yield World(run, shipped, mounted, record)
    finally:
        watchdog.set()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        root.handlers[:], root.level = saved


def stop_when(condition: Callable[[], bool], timeout: float = 30) -> threading.Event:
    """SIGTERM to this process once `condition` holds (or after `timeout` s, whatever),
    unless the Event returned is set first (the init returned by itself)."""
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline and not done.is_set():
            time.sleep(0.05)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    return done


def succeeded_now(rdb: redis.Redis) -> None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    rdb.set(STATUS_KEY, json.dumps({"ok": True, "last_success_at": at}))


# --- a good configuration: the pass at start, then the schedule ------------------------------


def test_a_pass_at_start_then_the_shipped_schedule(
    world: World, rdb: redis.Redis, capfd: pytest.CaptureFixture[str]
) -> None:
    assert container.main([]) == 0
    err = capfd.readouterr().err
    assert "pass at start" in err
    assert rdb.exists(STATS_KEY, LAST_UPDATE_KEY) == 2  # the pass wrote its snapshot
    started = world.supercronic()
    assert started is not None
    # the repo's crontab, by its path: nothing generated at the default interval
    assert started["argv"] == ["-passthrough-logs", "-no-reap", str(world.shipped)]
    assert started["crontab"] == (REPO / "crontab").read_text()
    assert started["marker"] is False  # the health check waited for the pass, not longer
    assert sorted(p.name for p in world.run.iterdir()) == []


def test_the_health_marker_is_there_while_the_pass_at_start_runs(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    marker = world.run / "starting"
    probe = f"import os; open({str(seen)!r}, 'w').write(str(os.path.exists({str(marker)!r})))"
    monkeypatch.setattr(container, "PASS_COMMAND", (sys.executable, "-c", probe))
    assert container.main([]) == 0
    assert seen.read_text() == "True"
    assert not (world.run / "starting").exists()


def test_fresh_data_means_no_pass_at_start(
    world: World, rdb: redis.Redis, capfd: pytest.CaptureFixture[str]
) -> None:
    """TG_RUN_AT_START=1 (the default) and a success 0 s ago: no Telegram call at all."""
    succeeded_now(rdb)
    assert container.main([]) == 0
    err = capfd.readouterr().err
    assert "none at start" in err and "pass at start" not in err
    assert rdb.exists(STATS_KEY, LAST_UPDATE_KEY) == 0
    assert world.supercronic() is not None


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_run_at_start_0_means_no_pass_even_when_nothing_is_stored(
    world: World,
    rdb: redis.Redis,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    if where == ".env":
        (tmp_path / ".env").write_text("TG_RUN_AT_START=0\n")
    else:
        monkeypatch.setenv("TG_RUN_AT_START", "0")
    assert container.main([]) == 0
    assert "pass at start" not in capfd.readouterr().err
    assert rdb.exists(STATS_KEY, LAST_UPDATE_KEY, STATUS_KEY) == 0
    assert world.supercronic() is not None


def test_a_failed_pass_at_start_and_the_schedule_goes_on(
    world: World,
    rdb: redis.Redis,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TG_CHANNEL_USERNAME", "no_such_channel")
    assert container.main([]) == 0
    err = capfd.readouterr().err
    assert "the pass at start ended with exit 4; the schedule goes on" in err
    assert json.loads(rdb.get(STATUS_KEY))["exit_code"] == 4
    assert world.supercronic() is not None
    assert not (world.run / "starting").exists()


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_supercronic_args_are_passed_on(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    value = "-json -prometheus-listen-address '0.0.0.0:9746'"
    monkeypatch.setenv("TG_RUN_AT_START", "0")
    if where == ".env":
        (tmp_path / ".env").write_text(f'SUPERCRONIC_ARGS="{value}"\n')
    else:
        monkeypatch.setenv("SUPERCRONIC_ARGS", value)
    assert container.main([]) == 0
    started = world.supercronic()
    assert started is not None
    assert started["argv"][2:5] == ["-json", "-prometheus-listen-address", "0.0.0.0:9746"]


def test_another_interval_writes_its_crontab_privately(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link planted where the crontab goes is replaced, never followed."""
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "3600")
    monkeypatch.setenv("TG_RUN_AT_START", "0")
    victim = world.run.parent / "victim"
    victim.write_text("untouched\n")
    (world.run / "crontab").symlink_to(victim)
    assert container.main([]) == 0
    started = world.supercronic()
    assert started is not None
    assert started["argv"][-1] == str(world.run / "crontab")
    assert started["crontab"] == "0 * * * * exec tgstats collect\n"
    assert victim.read_text() == "untouched\n"
    info = (world.run / "crontab").lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600


def test_outside_the_image_the_crontab_is_in_a_fresh_private_directory(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No /run/tgstats of ours: mkdtemp, not a name in /tmp another user could plant."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir(mode=0o777)
    planted = shared / "tgstats.crontab"
    planted.write_text("* * * * * echo planted\n")
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(schedule, "RUN_DIR", tmp_path / "missing")
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "300")
    monkeypatch.setenv("TG_RUN_AT_START", "0")
    assert container.main([]) == 0
    started = world.supercronic()
    assert started is not None
    used = Path(started["argv"][-1])
    assert started["crontab"] == "*/5 * * * * exec tgstats collect\n"
    assert used.parent.parent == shared and used.parent.name.startswith("tgstats-")
    assert not used.parent.exists()  # removed at the end
    assert planted.read_text() == "* * * * * echo planted\n"


# --- Redis starting beside it -----------------------------------------------------------------


def test_the_pass_at_start_waits_for_a_redis_that_comes_up_late(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    late = RedisServer(tmp_path)
    monkeypatch.setenv("REDIS_URL", late.url)
    timer = threading.Timer(2.0, late.start)
    timer.start()
    try:
        assert container.main([]) == 0
        err = capfd.readouterr().err
        assert "waiting up to 30 s for Redis at 127.0.0.1" in err
        assert "answered after" in err and "pass at start" in err
        with redis.Redis(port=late.port) as client:
            assert client.exists(STATS_KEY) == 1  # the pass ran once Redis was there
    finally:
        timer.join()
        late.stop()


def test_a_redis_that_never_answers_is_waited_for_then_the_pass_runs_anyway(
    world: World, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(container, "REDIS_WAIT", 1.5)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    assert container.main([]) == 0
    assert time.monotonic() - started >= 1.5
    err = capfd.readouterr().err
    assert "still does not answer after 2 s" in err or "still does not answer after 1 s" in err
    assert "the pass at start ended with exit 5" in err  # as before the wait
    assert world.supercronic() is not None


def test_a_stop_while_waiting_for_redis_ends_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    done = stop_when(lambda: False, timeout=1.5)  # well inside the 30 s wait
    started = time.monotonic()
    try:
        code = container.main([])
    finally:
        done.set()
    assert code == 143
    assert time.monotonic() - started < 5
    assert "waiting up to 30 s for Redis" in capfd.readouterr().err
    assert world.supercronic() is None


# --- a bad value: the container waits, unhealthy, naming it -------------------------------


def waits_with_problem(world: World, capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the init until its problem is written, then stop it: (exit code, stderr)."""
    done = stop_when((world.run / "problem").exists, timeout=20)
    try:
        code = container.main([])
    finally:
        done.set()
    return code, capfd.readouterr().err


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_a_bad_interval_waits_naming_it_once_and_calls_nothing(
    world: World,
    rdb: redis.Redis,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    if where == ".env":
        (tmp_path / ".env").write_text("TG_UPDATE_INTERVAL=700\n")
    else:
        monkeypatch.setenv("TG_UPDATE_INTERVAL", "700")
    code, err = waits_with_problem(world, capfd)
    assert code == 2
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: TG_UPDATE_INTERVAL must be a whole number of minutes")
    assert "got 700" in line and line.endswith(container.WAITING)
    assert (world.run / "problem").read_text() == line + "\n"  # the health check's output
    assert not (world.run / "starting").exists()
    assert "pass at start" not in err and world.supercronic() is None
    assert rdb.keys("*") == []  # no pass: no Telegram call, nothing written


def test_the_line_is_said_again_every_hour(
    world: World, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container, "PROBLEM_REPEAT", 0.3)
    monkeypatch.delenv("TG_SESSION_STRING")
    done = stop_when(lambda: False, timeout=1.2)
    try:
        assert container.main([]) == 2
    finally:
        done.set()
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert 3 <= len(lines) <= 5 and len(set(lines)) == 1
    assert "TG_SESSION_STRING is not set" in lines[0]


def test_every_bad_variable_is_named_in_the_one_line(
    world: World, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_API_ID")
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "90")
    monkeypatch.setenv("TG_RUN_AT_START", "yes")
    monkeypatch.setenv("SUPERCRONIC_ARGS", "-prometheus-listen-address 'secret")
    code, err = waits_with_problem(world, capfd)
    assert code == 2
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "TG_API_ID is not set" in line
    assert "TG_UPDATE_INTERVAL must be" in line and "got 90" in line
    assert "TG_RUN_AT_START must be 0 or 1, got 'yes'" in line
    assert "SUPERCRONIC_ARGS is not a list of arguments as a shell reads them" in line
    assert "secret" not in line


def test_a_long_run_at_start_value_is_not_echoed(
    world: World, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_RUN_AT_START", FAKE_API_HASH)
    code, err = waits_with_problem(world, capfd)
    assert code == 2 and FAKE_API_HASH[:6] not in err
    assert "TG_RUN_AT_START must be 0 or 1, got a value of 32 characters" in err


# --- a crontab of one's own -----------------------------------------------------------------


def test_a_mounted_crontab_is_the_schedule_whatever_the_interval(
    world: World, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    world.mounted.write_text("# daytime only\nTZ=Europe/Moscow\n*/15 7-23 * * * tgstats collect\n")
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "30000")  # no cron form: fine, staleness only
    monkeypatch.setenv("TG_RUN_AT_START", "0")
    assert container.main([]) == 0
    started = world.supercronic()
    assert started is not None and started["argv"][-1] == str(world.mounted)
    assert f"schedule: the crontab mounted at {world.mounted} (1 job)" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "*/15 7-23 * * tgstats collect\n",
            "is not a valid crontab: bad crontab line: '*/15 7-23 * * tgstats collect'; "
            + container.WAITING,
        ),
        ("# nothing but a comment\n", "has no job: nothing would ever run"),
        (None, "is a directory (Docker makes one when the file to mount is missing)"),
        (b"\xff\xfe*/5 * * * * x\n", "is not UTF-8 text"),
    ],
    ids=["bad-fields", "no-job", "directory", "not-utf8"],
)
def test_a_bad_mounted_crontab_is_like_a_bad_value(
    world: World,
    rdb: redis.Redis,
    capfd: pytest.CaptureFixture[str],
    content: str | bytes | None,
    problem: str,
) -> None:
    if content is None:
        world.mounted.mkdir()
    elif isinstance(content, bytes):
        world.mounted.write_bytes(content)
    else:
        world.mounted.write_text(content)
    code, err = waits_with_problem(world, capfd)
    assert code == 2
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.startswith(f"error: the crontab mounted at {world.mounted} {problem}")
    assert world.supercronic() is None and rdb.keys("*") == []


# --- the health check -----------------------------------------------------------------------


def healthcheck(world: World, tmp_path: Path) -> Path:
    """docker/healthcheck.sh reading this test's run directory instead of /run/tgstats."""
    script = tmp_path / "healthcheck.sh"
    text = (REPO / "docker" / "healthcheck.sh").read_text()
    assert "run=/run/tgstats\n" in text and str(schedule.RUN_DIR) == str(world.run)
    script.write_text(text.replace("run=/run/tgstats\n", f"run={world.run}\n"))
    script.chmod(0o755)
    return script


def test_the_health_check_waits_for_the_start_then_checks(
    world: World, tmp_path: Path, rdb: redis.Redis
) -> None:
    script = healthcheck(world, tmp_path)
    (world.run / "starting").write_text("1\n")
    threading.Timer(1.5, (world.run / "starting").unlink).start()
    started = time.monotonic()
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=30, check=False)
    assert time.monotonic() - started >= 1.5  # it waited for the marker to go
    assert result.returncode == 1  # then `tgstats show --check`: nothing stored, stale
    assert result.stdout.count("\n") == 1


def test_the_health_check_prints_the_bad_value_line(world: World, tmp_path: Path) -> None:
    script = healthcheck(world, tmp_path)
    line = "error: TG_UPDATE_INTERVAL must be … got 700; " + container.WAITING
    (world.run / "problem").write_text(line + "\n")
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (1, line + "\n")
