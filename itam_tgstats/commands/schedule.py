"""The container's schedule: the crontab supercronic runs, and where the init keeps its files.

At the default TG_UPDATE_INTERVAL (900) the image runs the crontab it ships, the repo's
top-level `crontab` (one job, `*/15 * * * *`, `tgstats collect`). Another interval a cron
schedule expresses exactly gives the equivalent one-job crontab, written into the init's
private directory. A crontab a deployer mounts at MOUNTED_CRONTAB (a schedule no interval
expresses, e.g. daytime only) replaces both; it is checked at start.

The init's files live in a directory only its user may enter: the image's RUN_DIR (also
where the health check reads whether the start is over), else a fresh one made by mkdtemp.
Each file is created anew (O_EXCL, never through a symbolic link), never in a shared /tmp
under a name another user could guess and plant first.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from itam_tgstats.errors import ConfigError, one_line

SUPERCRONIC = "/usr/local/bin/supercronic"
# What each scheduled run executes; `exec` leaves one process per pass (no shell between).
PASS_COMMAND = ("tgstats", "collect")
DEFAULT_INTERVAL = 900
# The repo's top-level `crontab`, as the image ships it.
SHIPPED_CRONTAB = Path("/usr/local/share/tgstats/crontab")
# Where a deployer mounts a crontab of their own (read-only is enough).
MOUNTED_CRONTAB = Path("/etc/tgstats/crontab")
# The image's private directory for the init (mode 0700, owned by the image's user).
RUN_DIR = Path("/run/tgstats")
# A crontab is a few lines; anything this big was mounted by mistake.
CRONTAB_MAX_BYTES = 64 * 1024
# A line supercronic reads as an environment variable, not a job.
_ENV_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*=")
# supercronic's log lines: level=… msg="…" (what it refuses is at level error or fatal)
_MSG = re.compile(r'level=(\w+) msg="((?:\\.|[^"\\])*)"')


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
        f"7200, 10800, 14400, 21600, 28800, 43200, 86400) in the container, got {interval} "
        f"(or mount a crontab of your own at {MOUNTED_CRONTAB})"
    )


def crontab_text(interval: int) -> str:
    """The crontab supercronic runs: one line, five schedule fields, then the pass."""
    return f"{cron_schedule(interval)} exec {shlex.join(PASS_COMMAND)}\n"


def job_lines(text: str) -> list[str]:
    """A crontab's jobs: its lines but blank ones, comments and variable settings."""
    lines = (line.strip() for line in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#") and not _ENV_LINE.match(ln)]


@dataclass(frozen=True)
class Schedule:
    """What supercronic runs: a crontab file already there (`path`), or `text` to write."""

    describe: str
    path: Path | None = None
    text: str | None = None
    mounted: bool = False


def schedule_for(interval: int) -> Schedule:
    """The schedule for TG_UPDATE_INTERVAL, or the mounted crontab when there is one.

    ConfigError (one line) for an interval cron cannot express, or a mounted crontab that
    is not a valid one; with a mounted crontab any interval is fine (it then sets only the
    staleness limit and whether a pass runs at start).
    """
    if os.path.lexists(MOUNTED_CRONTAB):
        jobs = check_mounted(MOUNTED_CRONTAB)
        return Schedule(
            f"the crontab mounted at {MOUNTED_CRONTAB} ({jobs} job{'s' * (jobs != 1)}); "
            f"TG_UPDATE_INTERVAL={interval} sets only the staleness limit and the pass at start",
            path=MOUNTED_CRONTAB,
            mounted=True,
        )
    text = crontab_text(interval)
    if interval == DEFAULT_INTERVAL and SHIPPED_CRONTAB.is_file():
        return Schedule(f"{text.strip()} ({SHIPPED_CRONTAB})", path=SHIPPED_CRONTAB)
    return Schedule(text.strip(), text=text)


def check_mounted(path: Path) -> int:
    """The number of jobs in the crontab mounted at `path`; ConfigError naming it if it is
    not one supercronic runs."""
    where = f"the crontab mounted at {path}"
    try:
        info = path.stat()
    except OSError as e:
        raise ConfigError(f"{where} cannot be read ({e.strerror or 'broken link'})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(
            f"{where} is a directory (Docker makes one when the file to mount is missing): "
            "mount a file"
        )
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{where} is not a regular file")
    if info.st_size > CRONTAB_MAX_BYTES:
        raise ConfigError(f"{where} holds {info.st_size} bytes: not a crontab")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{where} cannot be read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    jobs = len(job_lines(text))
    if jobs == 0:
        raise ConfigError(f"{where} has no job: nothing would ever run")
    problem = supercronic_refuses(path)
    if problem is not None:
        raise ConfigError(f"{where} is not a valid crontab: {problem}")
    return jobs


def supercronic_refuses(path: Path) -> str | None:
    """What `supercronic -test` says is wrong with the crontab at `path` (None: valid)."""
    try:
        result = subprocess.run(  # noqa: S603 - our binary, the mounted path as one argument
            [SUPERCRONIC, "-test", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"supercronic could not check it ({one_line(str(e), 200)})"
    if result.returncode == 0:
        return None
    output = result.stderr + result.stdout
    said = [
        m.group(2).replace('\\"', '"').replace(" (use -debug for details)", "")
        for m in _MSG.finditer(output)
        if m.group(1) in ("error", "fatal")
    ]
    return one_line("; ".join(said) if said else output, 300) or f"exit {result.returncode}"


class RunDir:
    """The init's private directory: its crontab and, in the image, the health markers
    (`starting` while the start sequence runs, `problem` holding a bad configuration's
    line), which the health check (docker/healthcheck.sh) reads."""

    def __init__(self, path: Path, *, health: bool) -> None:
        self.path = path
        self.health = health

    @classmethod
    def open(cls) -> RunDir:
        """RUN_DIR when it is private to this user, else a fresh private directory."""
        if is_private_dir(RUN_DIR):
            run = cls(RUN_DIR, health=True)
            for name in ("problem", "crontab"):  # a previous start's
                run.remove(name)
            return run
        return cls(Path(tempfile.mkdtemp(prefix="tgstats-")), health=False)

    def write(self, name: str, text: str) -> Path:
        """Create `name` afresh (mode 0600): never through a link, never someone's file."""
        target = self.path / name
        self.remove(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        return target

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / name).unlink()

    def starting(self) -> None:
        """The health check waits while this marker is there."""
        if self.health:
            self.write("starting", f"{os.getpid()}\n")

    def started(self) -> None:
        if self.health:
            self.remove("starting")

    def problem(self, line: str) -> None:
        """A bad configuration: the health check prints `line` and fails."""
        if self.health:
            self.write("problem", line + "\n")
        self.started()

    def close(self) -> None:
        """Remove a directory made for this run (the image's own stays)."""
        if not self.health:
            shutil.rmtree(self.path, ignore_errors=True)


def is_private_dir(path: Path) -> bool:
    """A real directory (not a link) of this user's that nobody else may write or enter."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and info.st_mode & 0o077 == 0
        and os.access(path, os.W_OK | os.X_OK)
    )
