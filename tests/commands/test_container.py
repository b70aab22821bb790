"""The container's PID 1: TG_UPDATE_INTERVAL → schedule, the pass at start, stop signals."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from cronsim import CronSim

from itam_tgstats.commands import container, schedule
from itam_tgstats.config import Settings
from itam_tgstats.errors import ConfigError
from tests.conftest import FAKE_API_HASH

REPO = Path(__file__).resolve().parents[2]
ACCEPTED = [60 * m for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)] + [
    3600 * h for h in (1, 2, 3, 4, 6, 8, 12, 24)
]


@pytest.mark.parametrize("interval", ACCEPTED)
def test_every_accepted_interval_fires_exactly_that_often(interval: int) -> None:
    schedule = container.cron_schedule(interval)
    assert len(schedule.split()) == 5  # a sixth field would be read as a year
    start = datetime(2026, 11, 23, 0, 0)
    times = [start, *itertools.islice(CronSim(schedule, start), 2 * 86_400 // interval + 1)]
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(times)} == {interval}


def test_the_schedules_read_as_a_person_writes_them() -> None:
    assert container.cron_schedule(60) == "* * * * *"
    assert container.cron_schedule(300) == "*/5 * * * *"
    assert container.cron_schedule(900) == "*/15 * * * *"
    assert container.cron_schedule(3600) == "0 * * * *"
    assert container.cron_schedule(21600) == "0 */6 * * *"
    assert container.cron_schedule(86400) == "0 0 * * *"
    assert container.crontab_text(900) == "*/15 * * * * exec tgstats collect\n"


@pytest.mark.parametrize(
    "interval", [1, 30, 59, 61, 90, 420, 2400, 3000, 5400, 18000, 36000, 90000, 172_800, 604_800]
)
def test_an_interval_no_cron_schedule_expresses_is_refused(interval: int) -> None:
    with pytest.raises(ConfigError, match="TG_UPDATE_INTERVAL") as raised:
        container.cron_schedule(interval)
    assert raised.value.exit_code == 2
    assert f"got {interval}" in raised.value.message


def test_exactly_the_whole_minutes_dividing_an_hour_and_hours_dividing_a_day_are_accepted() -> None:
    def accepted(interval: int) -> bool:
        try:
            container.cron_schedule(interval)
        except ConfigError:
            return False
        return True

    assert [i for i in range(1, 7 * 86_400 + 1) if accepted(i)] == ACCEPTED


def test_print_crontab_needs_no_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TG_API_ID", raising=False)
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "3600")
    assert container.main(["--print-crontab"]) == 0
    assert capsys.readouterr().out == "0 * * * * exec tgstats collect\n"


def test_the_shipped_crontab_is_the_one_for_the_default_interval() -> None:
    """The repo's top-level crontab: one job, every 15 minutes, `tgstats collect`."""
    text = (REPO / "crontab").read_text()
    assert schedule.job_lines(text) == [container.crontab_text(900).strip()]
    assert schedule.job_lines(text)[0].split()[-2:] == ["tgstats", "collect"]


def test_run_at_start_is_0_or_1() -> None:
    assert container.run_at_start({}) is True
    assert container.run_at_start({"TG_RUN_AT_START": "1"}) is True
    assert container.run_at_start({"TG_RUN_AT_START": " 0 "}) is False
    with pytest.raises(ConfigError, match="TG_RUN_AT_START"):
        container.run_at_start({"TG_RUN_AT_START": "false"})


def test_run_at_start_hides_a_long_value_like_every_other_variable() -> None:
    """An API hash pasted into the wrong variable: its length, never its characters."""
    with pytest.raises(ConfigError) as raised:
        container.run_at_start({"TG_RUN_AT_START": FAKE_API_HASH})
    assert FAKE_API_HASH[:8] not in raised.value.message
    assert "a value of 32 characters (not shown" in raised.value.message


def settings_for(redis_url: str, interval: int = 900) -> Settings:
    return Settings.from_env(
        {"REDIS_URL": redis_url, "TG_UPDATE_INTERVAL": str(interval)},
        Path("/dev/null"),
        need_telegram=False,
    )


@pytest.mark.foreign_values("tg:status")  # only the fields read here
def test_a_pass_at_start_unless_the_last_success_is_younger_than_the_interval(
    redis_url: str, rdb: redis.Redis
) -> None:
    now = time.time()
    settings = settings_for(redis_url)
    assert container.pass_needed(settings, now) is True  # nothing recorded yet

    def succeeded(seconds_ago: int) -> None:
        at = datetime.fromtimestamp(now, UTC) - timedelta(seconds=seconds_ago)
        rdb.set("tg:status", json.dumps({"ok": True, "last_success_at": at.isoformat()}))

    succeeded(899)
    assert container.pass_needed(settings, now) is False
    succeeded(901)
    assert container.pass_needed(settings, now) is True
    rdb.set("tg:status", json.dumps({"ok": False, "last_success_at": None}))
    assert container.pass_needed(settings, now) is True


def test_a_pass_at_start_when_redis_cannot_be_read() -> None:
    settings = settings_for("redis://127.0.0.1:1/0")
    assert container.pass_needed(settings, time.time()) is True


# A stand-in for supercronic: its job runs in a process group of its own, and on SIGTERM it
# only waits for the job (as supercronic does), then exits 0.
SCHEDULER = """
import signal, subprocess, sys
job = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], process_group=0)
signal.signal(signal.SIGTERM, lambda *_: None)
sys.exit(0 if job.wait() in (0, 143) else 1)
"""
# A stand-in for a pass: says it started, and on SIGTERM writes its exit code, exits 143.
PASS = """
import pathlib, signal, sys, time
out = pathlib.Path(sys.argv[1])
def stop(*_):
    out.write_text("143")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
out.write_text("running")
time.sleep(60)
"""
INIT = """
import sys
from itam_tgstats.commands.container import Init
sys.exit(Init().run(sys.argv[1:]))
"""


def test_sigterm_reaches_the_pass_below_the_scheduler_and_the_init_waits_for_it(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pass"
    init = subprocess.Popen(
        [sys.executable, "-c", INIT, sys.executable, "-c", SCHEDULER, PASS, str(marker)]
    )
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text() == "running"):
        assert time.monotonic() < deadline and init.poll() is None
        time.sleep(0.05)
    started = time.monotonic()
    init.send_signal(signal.SIGTERM)
    assert init.wait(timeout=10) == 0  # the scheduler's own exit code
    assert time.monotonic() - started < 5
    assert marker.read_text() == "143"  # the pass got SIGTERM, not SIGKILL


@pytest.mark.foreign_values("tg:status")  # only the fields read here
def test_a_last_success_in_the_future_does_not_skip_the_pass_at_start(
    redis_url: str, rdb: redis.Redis
) -> None:
    """A success recorded ahead of this clock (the clock was set back, another host's
    clock) says nothing about how fresh the data is: the pass at start runs."""
    now = time.time()
    ahead = datetime.fromtimestamp(now, UTC) + timedelta(hours=1)
    rdb.set("tg:status", json.dumps({"ok": True, "last_success_at": ahead.isoformat()}))
    assert container.pass_needed(settings_for(redis_url), now) is True


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_a_child_killed_by_a_signal_exits_the_init_with_128_plus_its_number(
    sig: signal.Signals, code: int
) -> None:
    """As a shell reports it (and `docker` shows it): 128 + N, never N or a negative code."""
    child = f"import os; os.kill(os.getpid(), {int(sig)})"
    init = subprocess.run(
        [sys.executable, "-c", INIT, sys.executable, "-c", child], check=False, timeout=30
    )
    assert init.returncode == code


def start_init_with_a_pass(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The init running a stand-in pass (below the stand-in scheduler), once it runs."""
    marker = tmp_path / "pass"
    init = subprocess.Popen(
        [sys.executable, "-c", INIT, sys.executable, "-c", SCHEDULER, PASS, str(marker)]
    )
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text() == "running"):
        assert time.monotonic() < deadline and init.poll() is None
        time.sleep(0.05)
    time.sleep(0.2)  # the init's handlers are set before it starts a child; margin anyway
    return init, marker


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_sigusr_leaves_the_init_and_its_pass_running(tmp_path: Path, sig: signal.Signals) -> None:
    """Outside Docker a stray SIGUSR1 killed the init and left the pass running alone."""
    init, marker = start_init_with_a_pass(tmp_path)
    init.send_signal(sig)
    time.sleep(0.5)
    assert init.poll() is None and marker.read_text() == "running"
    init.send_signal(signal.SIGTERM)
    assert init.wait(timeout=10) == 0
    assert marker.read_text() == "143"


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_stops_the_pass_cleanly_and_then_the_init(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """A terminal gone (SIGHUP): the pass gets SIGTERM (ends as `collect` does on it, its
    lock released), then the init exits; nothing is left running."""
    init, marker = start_init_with_a_pass(tmp_path)
    started = time.monotonic()
    init.send_signal(sig)
    assert init.wait(timeout=10) == 0  # the scheduler's own exit code
    assert time.monotonic() - started < 5
    assert marker.read_text() == "143"  # SIGTERM reached the pass, not SIGHUP's default


# A child that starts a grandchild of its own and, on SIGTERM, exits at once; the grandchild
# takes a second to end cleanly (writing its exit), so it outlives its parent.
PARENT_OF_A_SLOW_PASS = """
import signal, subprocess, sys
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], process_group=0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pause()
"""
SLOW_PASS = """
import pathlib, signal, sys, time
out = pathlib.Path(sys.argv[1])
def stop(*_):
    time.sleep(1)
    out.write_text("143")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
out.write_text("running")
time.sleep(60)
"""


def test_on_a_stop_the_init_outlives_every_process_below_it(tmp_path: Path) -> None:
    """`docker stop`: the container ends when the init does, so the init waits for an
    orphaned pass too (else it would be killed mid-write)."""
    marker = tmp_path / "pass"
    init = subprocess.Popen(
        [sys.executable, "-c", INIT, sys.executable, "-c", PARENT_OF_A_SLOW_PASS, SLOW_PASS,
         str(marker)]
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text() == "running"):
        assert time.monotonic() < deadline and init.poll() is None
        time.sleep(0.05)
    init.send_signal(signal.SIGTERM)
    assert init.wait(timeout=10) == 0
    assert marker.read_text() == "143"  # the orphan had ended before the init did


def test_the_crontab_is_never_written_through_a_link_planted_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link planted between the removal of the old file and the creation of the new one:
    refused (O_EXCL, O_NOFOLLOW), the file it points to untouched."""
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    run = schedule.RunDir(folder, health=True)
    monkeypatch.setattr(run, "remove", lambda name: (folder / name).symlink_to(victim))
    with pytest.raises(FileExistsError):
        run.write("crontab", "* * * * * echo planted\n")
    assert victim.read_text() == "untouched\n"
