"""The container's PID 1: the configuration checked, a pass at start, then supercronic.

Run by the image's entrypoint with no arguments (`python -m itam_tgstats.commands.container`).
It checks the configuration, picks the schedule (`schedule`: the shipped crontab, the one
for TG_UPDATE_INTERVAL, or one the deployer mounted), waits up to 30 s for Redis, runs one
pass unless the last success is recent, then runs supercronic until the container stops.

A bad configuration stops nothing in a loop: the init stays up without calling Telegram,
says the one line naming the problem at start and again every hour, and the health check
prints it (the container is unhealthy), until the container is recreated with the fix.
While the start sequence runs, the health check waits for it (docker/healthcheck.sh reads
the markers `schedule.RunDir` writes), so the container turns healthy or unhealthy within
seconds of the pass at start, whatever Docker's health-check interval.

It is also the container's init. supercronic starts each job in a process group of its own
and, on SIGTERM, only waits for running jobs; `docker stop` gives 10 s before SIGKILL. So a
SIGTERM or SIGINT (or SIGHUP, SIGQUIT: a terminal gone) received here is passed on to every
process below this one (supercronic and the pass it runs: the pass ends as `collect` does,
exit 143, its lock released), and this process exits once they all have. SIGUSR1 and
SIGUSR2 are logged and ignored. It reaps orphans while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from itam_tgstats.commands import schedule
from itam_tgstats.commands.schedule import (  # re-exported: the init's own names
    PASS_COMMAND,
    SUPERCRONIC,
    RunDir,
    Schedule,
    cron_schedule,
    crontab_text,
    schedule_for,
)
from itam_tgstats.config import LOG_LEVELS, Settings, describe_redis_url, load_environment, shown
from itam_tgstats.errors import ConfigError, TgStatsError, describe
from itam_tgstats.escapes import EscapingFormatter, escape_controls
from itam_tgstats.store import Store
from itam_tgstats.store.status import parse_time

__all__ = ["PASS_COMMAND", "SUPERCRONIC", "cron_schedule", "crontab_text", "main"]

log = logging.getLogger(__name__)

# Stop signals: passed on to the processes below (SIGHUP and SIGQUIT as SIGTERM, which the
# pass ends cleanly on), then the init exits 128 + N. Others that would kill it: ignored.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
IGNORED_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
# How long the pass at start waits for Redis to answer (a stack whose redis has no health
# check starts both at once), and how often it asks meanwhile.
REDIS_WAIT = 30.0
REDIS_POLL = 1.0
# A bad configuration's line, said again this often while the container waits.
PROBLEM_REPEAT = 3600.0
# What follows a bad configuration's line: what the container does, what to do.
WAITING = (
    "the container stays up, unhealthy, and calls nothing: fix the value, then recreate it "
    "(docker compose up -d)"
)


def run_at_start(environ: Mapping[str, str]) -> bool:
    """TG_RUN_AT_START: 1 (default) runs a pass at start when the last success is old."""
    value = (environ.get("TG_RUN_AT_START") or "1").strip()
    if value not in ("0", "1"):
        raise ConfigError(f"TG_RUN_AT_START must be 0 or 1, got {shown(value)}")
    return value == "1"


def supercronic_args(environ: Mapping[str, str]) -> list[str]:
    """SUPERCRONIC_ARGS split as a shell would (quotes included); ConfigError if it cannot be."""
    try:
        return shlex.split(environ.get("SUPERCRONIC_ARGS") or "")
    except ValueError as e:  # its value may hold an address or a token: not echoed
        raise ConfigError(
            f"SUPERCRONIC_ARGS is not a list of arguments as a shell reads them ({e})"
        ) from None


async def last_success_at(settings: Settings) -> float | None:
    """When the last successful pass ended (`tg:status`), as a unix time; None if never."""
    store = Store(settings.redis_url)
    try:
        view = await store.read_all()
    finally:
        await store.aclose()
    status = view.get("status")
    return parse_time(status.get("last_success_at")) if isinstance(status, dict) else None


def pass_needed(settings: Settings, now: float) -> bool:
    """False only when the last success is younger than TG_UPDATE_INTERVAL."""
    try:
        last = asyncio.run(last_success_at(settings))
    except TgStatsError as e:
        log.warning("cannot read the last pass's status (%s): a pass runs now", e)
        return True
    except Exception as e:  # noqa: BLE001 - whatever Redis holds, the schedule must start
        log.warning("cannot read the last pass's status (%s): a pass runs now", describe(e))
        return True
    if last is None:
        return True
    age = now - last
    if 0 <= age < settings.update_interval:
        log.info(
            "last successful pass %d s ago (TG_UPDATE_INTERVAL %d s): none at start",
            age,
            settings.update_interval,
        )
        return False
    return True


def descendants(root: int) -> list[int]:
    """Every live process below `root`, read from /proc (parents before children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# prctl(2): orphans below this process are re-parented to it, as to a PID 1.
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt (and so reap, and wait for) every orphan below this process, also when it is
    not PID 1 (`docker run --init`, compose's `init: true`, outside Docker). Linux only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class Init:
    """Starts children one at a time, passes stop signals on, reaps whatever exits."""

    def __init__(self) -> None:
        self.stopping: signal.Signals | None = None
        become_subreaper()
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        for sig in IGNORED_SIGNALS:
            signal.signal(sig, self._on_ignored)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self.stopping is None:
            log.info("received %s: passing it on to the processes below", sig.name)
        self.stopping = sig
        passed = signal.SIGINT if sig == signal.SIGINT else signal.SIGTERM
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, passed)

    def _on_ignored(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: ignored", signal.Signals(signum).name)

    def run(self, argv: list[str]) -> int:
        """Run `argv` to its end; its exit code (128 + N when killed by signal N).

        When a stop signal arrived, wait for every other process below this one too.
        """
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        if self.stopping is not None:  # arrived while starting it
            self._on_signal(self.stopping, None)
        while True:
            done, status = os.waitpid(-1, 0)  # orphans are reaped on the way
            if done == pid:
                break
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        if self.stopping is not None:
            while self._reap() and descendants(os.getpid()):
                time.sleep(0.05)
        return code

    @staticmethod
    def _reap() -> bool:
        """Reap every child that has ended; False when none is left at all."""
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return False
        return True

    def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`, reaping orphans; False as soon as a stop signal arrived."""
        deadline = time.monotonic() + seconds
        while self.stopping is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
            self._reap()
        return self.stopping is None

    def wait_with_problem(self, line: str) -> int:
        """A bad configuration: stay up, the line again every PROBLEM_REPEAT s, until stopped."""
        while self.pause(PROBLEM_REPEAT):
            say(line)
        return 2


@dataclass(frozen=True)
class Start:
    """The checked configuration: what the init does."""

    settings: Settings
    schedule: Schedule
    at_start: bool
    supercronic_args: list[str]


def configuration() -> Start:
    """The configuration, checked; ConfigError naming every problem at once, in one line."""
    problems: list[str] = []
    environ = load_environment()
    settings: Settings | None = None
    try:
        settings = Settings.from_env(need_telegram=True, need_session=True)
        interval = settings.update_interval
    except ConfigError as e:
        problems.append(e.message)
        # The schedule is still checked, on TG_UPDATE_INTERVAL alone.
        try:
            interval = Settings.from_env(
                environ, Path(os.devnull), need_telegram=False, reads=("TG_UPDATE_INTERVAL",)
            ).update_interval
        except ConfigError:
            interval = schedule.DEFAULT_INTERVAL  # its problem is reported already
    plan: Schedule | None = None
    at_start: bool | None = None
    extra: list[str] | None = None
    try:
        plan = schedule_for(interval)
    except ConfigError as e:
        problems.append(e.message)
    try:
        at_start = run_at_start(environ)
    except ConfigError as e:
        problems.append(e.message)
    try:
        extra = supercronic_args(environ)
    except ConfigError as e:
        problems.append(e.message)
    if problems or settings is None or plan is None or at_start is None or extra is None:
        raise ConfigError("; ".join(problems))
    return Start(settings, plan, at_start, extra)


async def redis_answers(url: str) -> str | None:
    """None when Redis at `url` answers a PING, else why not (one line)."""
    store = Store(url)
    try:
        await store.redis.ping()
    except Exception as e:  # noqa: BLE001 - any failure is a "not yet"
        return " ".join(str(e).split())[:200] or type(e).__name__
    finally:
        with contextlib.suppress(Exception):
            await store.aclose()
    return None


def wait_for_redis(settings: Settings, init: Init) -> bool:
    """Up to REDIS_WAIT s for Redis to answer (False: it did not, or a stop signal came)."""
    started = time.monotonic()
    where = describe_redis_url(settings.redis_url)
    said = False
    while True:
        problem = asyncio.run(redis_answers(settings.redis_url))
        waited = time.monotonic() - started
        if problem is None:
            if said:
                log.info("Redis at %s answered after %.0f s", where, waited)
            return True
        if waited >= REDIS_WAIT:
            log.warning(
                "Redis at %s still does not answer after %.0f s (%s): the pass at start "
                "runs anyway",
                where,
                waited,
                problem,
            )
            return False
        if not said:
            log.info("waiting up to %.0f s for Redis at %s (%s)", REDIS_WAIT, where, problem)
            said = True
        if not init.pause(min(REDIS_POLL, REDIS_WAIT - waited)):
            return False


def setup_logging(level: str) -> None:
    """One line per message on stderr, in the format of `tgstats` itself."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(level if level in LOG_LEVELS else "INFO")


def say(line: str) -> None:
    """A line of its own on stderr (as `tgstats` prints its errors)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """The container's default command; `--print-crontab` prints the crontab and exits."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--print-crontab"]:
        try:
            settings = Settings.from_env(need_telegram=False)
            sys.stdout.write(crontab_text(settings.update_interval))
        except ConfigError as e:
            say(f"error: {escape_controls(' '.join(e.message.split()))}")
            return e.exit_code
        return 0
    try:
        level = (load_environment().get("LOG_LEVEL") or "INFO").strip().upper()
    except ConfigError:  # an unreadable .env: reported with the configuration
        level = "INFO"
    setup_logging(level)
    run = RunDir.open()
    try:
        run.starting()  # the health check waits until the start sequence is over
        init = Init()
        return start(init, run)
    finally:
        run.close()


def start(init: Init, run: RunDir) -> int:
    """The start sequence, then the schedule: the container's life."""
    try:
        config = configuration()
    except ConfigError as e:
        line = f"error: {escape_controls(' '.join(e.message.split()))}; {WAITING}"
        run.problem(line)
        say(line)
        return init.wait_with_problem(line)
    settings = config.settings
    log.info("schedule: %s", config.schedule.describe)
    crontab = config.schedule.path or run.write("crontab", config.schedule.text or "")
    if config.at_start:
        wait_for_redis(settings, init)
    if init.stopping is None and config.at_start and pass_needed(settings, time.time()):
        log.info("pass at start")
        code = init.run(list(PASS_COMMAND))
        if init.stopping is not None:
            return code
        if code != 0:
            log.warning("the pass at start ended with exit %d; the schedule goes on", code)
        else:
            log.info("the pass at start ended with exit 0")
    run.started()
    if init.stopping is not None:
        return 128 + init.stopping
    # -no-reap: this process reaps (supercronic does it only as PID 1).
    argv = [schedule.SUPERCRONIC, "-passthrough-logs", "-no-reap", *config.supercronic_args]
    return init.run([*argv, str(crontab)])


if __name__ == "__main__":
    sys.exit(main())
