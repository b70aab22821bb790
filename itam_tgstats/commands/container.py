"""The container's PID 1: the schedule from TG_UPDATE_INTERVAL, a pass at start, supercronic.

Run by the image's entrypoint with no arguments (`python -m itam_tgstats.commands.container`). It
validates the configuration (a bad value stops the container at once, exit 2), writes the
crontab for TG_UPDATE_INTERVAL, runs one pass unless the last success is recent, then runs
supercronic until the container is stopped.

It is also the container's init. supercronic starts each job in a process group of its own
and, on SIGTERM, only waits for running jobs; `docker stop` gives 10 s before SIGKILL. So a
SIGTERM or SIGINT received here is passed on to every process below this one (supercronic
and the pass it runs: the pass ends as `collect` does, exit 143, its lock released), and
this process exits once they all have. It reaps orphans while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from itam_tgstats.config import Settings, load_environment
from itam_tgstats.errors import ConfigError, TgStatsError
from itam_tgstats.escapes import EscapingFormatter
from itam_tgstats.store import Store
from itam_tgstats.store.status import parse_time

log = logging.getLogger(__name__)

SUPERCRONIC = "/usr/local/bin/supercronic"
# What each scheduled run executes; `exec` leaves one process per pass (no shell between).
PASS_COMMAND = ("tgstats", "collect")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def cron_schedule(interval: int) -> str:
    """The five-field cron schedule that runs a pass every `interval` seconds exactly.

    A whole number of minutes dividing an hour, or of hours dividing a day; anything else
    has no exact cron form and raises ConfigError naming TG_UPDATE_INTERVAL.
    """
    minutes, seconds = divmod(interval, 60)
    if seconds == 0 and minutes >= 1:
        if minutes == 1:
            return "* * * * *"
        if minutes < 60 and 60 % minutes == 0:
            return f"*/{minutes} * * * *"
        hours, rest = divmod(minutes, 60)
        if rest == 0 and 24 % hours == 0:
            if hours == 1:
                return "0 * * * *"
            if hours == 24:
                return "0 0 * * *"
            return f"0 */{hours} * * *"
    raise ConfigError(
        "TG_UPDATE_INTERVAL must be a whole number of minutes dividing an hour (60, 120, "
        "180, 240, 300, 360, 600, 720, 900, 1200, 1800) or of hours dividing a day (3600, "
        f"7200, 10800, 14400, 21600, 28800, 43200, 86400) in the container, got {interval}"
    )


def crontab_text(interval: int) -> str:
    """The crontab supercronic runs: one line, five schedule fields, then the pass."""
    return f"{cron_schedule(interval)} exec {shlex.join(PASS_COMMAND)}\n"


def run_at_start(environ: dict[str, str] | os._Environ[str]) -> bool:
    """TG_RUN_AT_START: 1 (default) runs a pass at start when the last success is old."""
    value = (environ.get("TG_RUN_AT_START") or "1").strip()
    if value not in ("0", "1"):
        raise ConfigError(f"TG_RUN_AT_START must be 0 or 1, got {value[:24]!r}")
    return value == "1"


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


class Init:
    """Starts children one at a time, passes stop signals on, reaps whatever exits."""

    def __init__(self) -> None:
        self.stopping: signal.Signals | None = None
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self.stopping is None:
            log.info("received %s: passing it on to the processes below", sig.name)
        self.stopping = sig
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, sig)

    def run(self, argv: list[str]) -> int:
        """Run `argv` to its end; its exit code (128 + N when killed by signal N).

        When a stop signal arrived, wait for every other child too before returning.
        """
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        if self.stopping is not None:  # arrived while starting it
            self._on_signal(self.stopping, None)
        code: int | None = None
        while True:
            try:
                done, status = os.waitpid(-1, 0)
            except ChildProcessError:  # no child left
                return code if code is not None else 0
            if done != pid:
                continue  # an orphan, reaped
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            if self.stopping is None:
                return code


def configuration() -> tuple[Settings, str, bool]:
    """(settings, crontab, pass at start?); ConfigError naming every bad variable at once."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.from_env(need_telegram=True, need_session=True)
        interval = settings.update_interval
    except ConfigError as e:
        problems.append(e.message)
        # The schedule is still checked, on TG_UPDATE_INTERVAL alone.
        only = {k: v for k, v in load_environment().items() if k == "TG_UPDATE_INTERVAL"}
        try:
            interval = Settings.from_env(
                only, Path(os.devnull), need_telegram=False
            ).update_interval
        except ConfigError:
            interval = 900  # its problem is reported already
    text = at_start = None
    try:
        text = crontab_text(interval)
    except ConfigError as e:
        problems.append(e.message)
    try:
        at_start = run_at_start(os.environ)
    except ConfigError as e:
        problems.append(e.message)
    if problems or settings is None or text is None or at_start is None:
        raise ConfigError("; ".join(problems))
    return settings, text, at_start


def setup_logging(level: str) -> None:
    """One line per message on stderr, in the format of `tgstats` itself."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """The container's default command; `--print-crontab` prints the crontab and exits."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["--print-crontab"]:
            settings = Settings.from_env(need_telegram=False)
            sys.stdout.write(crontab_text(settings.update_interval))
            return 0
        settings, text, at_start = configuration()
    except ConfigError as e:
        sys.stderr.write(f"error: {' '.join(e.message.split())}\n")
        return e.exit_code
    setup_logging(settings.log_level)
    crontab = Path(tempfile.gettempdir()) / "tgstats.crontab"
    crontab.write_text(text)
    log.info("schedule: %s", text.strip())

    init = Init()
    if at_start and pass_needed(settings, time.time()):
        log.info("pass at start")
        code = init.run(list(PASS_COMMAND))
        if init.stopping is not None:
            return code
        if code != 0:
            log.warning("the pass at start ended with exit %d; the schedule goes on", code)
    if init.stopping is not None:
        return 128 + init.stopping
    extra = shlex.split(os.environ.get("SUPERCRONIC_ARGS", ""))
    # -no-reap: this process reaps (supercronic does it only as PID 1).
    return init.run([SUPERCRONIC, "-passthrough-logs", "-no-reap", *extra, str(crontab)])


if __name__ == "__main__":
    sys.exit(main())
