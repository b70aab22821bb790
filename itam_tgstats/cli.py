"""The `tgstats` command: parses arguments, calls one function per command, maps errors.

The only module that imports typer. Pyrogram is imported only by the commands that talk to
Telegram, so `show` and `--help` stay fast.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from itam_tgstats import __version__
from itam_tgstats.commands.prompter import TerminalPrompter
from itam_tgstats.config import Settings, load_environment
from itam_tgstats.errors import ConfigError, TgStatsError
from itam_tgstats.escapes import escape_controls, setup_logging

T = TypeVar("T")

app = typer.Typer(
    name="tgstats",
    help="Collects the ITAM Telegram channel's numbers into Redis for the website's Go API.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain tracebacks (exit 1 only): rich's pretty ones would print local variables.
    pretty_exceptions_enable=False,
    # Plain click help: wraps paragraphs properly, and `--help` does not load rich.
    rich_markup_mode=None,
)

log = logging.getLogger("itam_tgstats")


def invocation() -> str:
    """How this program was started, for hints the person can paste as they are.

    `tgstats` when that is what the shell finds on PATH, else the path it was run by
    (`.venv/bin/tgstats` after the README's set-up).
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name != "tgstats":
        return "tgstats"
    on_path = shutil.which("tgstats")
    if on_path is not None and Path(on_path).resolve() == Path(argv0).resolve():
        return "tgstats"
    return argv0


def fail(message: str, code: int) -> typer.Exit:
    """Print `error: <message>` as one line on stderr; the Exit to raise."""
    line = escape_controls(" ".join(message.split())).replace("`tgstats ", f"`{invocation()} ")
    sys.stderr.write(f"error: {line}\n")
    return typer.Exit(code)


def run(action: Callable[[], T]) -> T:
    """Run a command's action, turning our errors into their one line and exit code."""
    try:
        return action()
    except TgStatsError as e:
        raise fail(e.message, e.exit_code) from None


# What `show` reads (every form, the health check included): a malformed API id, hash or
# session string, which it never uses, does not stop it.
SHOW_READS = ("REDIS_URL", "TG_CHANNEL_USERNAME", "TG_UPDATE_INTERVAL", "TG_POST_HISTORY_DAYS")
# What `session` reads: never TG_SESSION_STRING, the value it is there to replace.
SESSION_READS = ("TG_API_ID", "TG_API_HASH", "LOG_LEVEL")


def load_settings(
    *, need_telegram: bool, need_session: bool = False, reads: tuple[str, ...] | None = None
) -> Settings:
    """Settings from the environment and ./.env, with logging set up from them."""
    settings = Settings.from_env(
        need_telegram=need_telegram, need_session=need_session, reads=reads
    )
    setup_logging(settings.log_level)
    return settings


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tgstats {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Collects the ITAM Telegram channel's numbers into Redis for the website's Go API.

    Configuration comes from the environment, or a .env file in the working directory.
    """


@app.command()
def collect(
    loop: Annotated[
        bool,
        typer.Option(
            "--loop/--once",
            help="--once (default): one pass, then exit. --loop: a pass every "
            "TG_UPDATE_INTERVAL seconds, for hosts without cron; exits after 5 failures in a row.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help='Print {"stats": ..., "posts": [...]} on stdout and write nothing to Redis.',
        ),
    ] = False,
    retry_now: Annotated[
        bool,
        typer.Option(
            "--retry-now",
            help="Ask Telegram about every channel this pass, also those left alone after "
            "failing on their own (see `tgstats show`).",
        ),
    ] = False,
) -> None:
    """Read the channel and write one consistent snapshot into Redis.

    Exit codes: 0 success (or skipped: another pass holds the lock), 1 bug, 2 bad
    configuration, 3 session not authorized (run `tgstats session`), 4 Telegram refused or
    failed, 5 Redis unreachable, 130/143 interrupted.
    """
    from itam_tgstats import collect as pass_  # noqa: PLC0415
    from itam_tgstats import runner  # noqa: PLC0415
    from itam_tgstats.commands import dryrun  # noqa: PLC0415
    from itam_tgstats.store import Store  # noqa: PLC0415

    if loop and dry_run:
        raise fail("--dry-run makes one pass; it cannot be combined with --loop", 2)
    settings = run(lambda: load_settings(need_telegram=True, need_session=True))

    if dry_run:
        snapshot = run(
            lambda: runner.run_with_signals(
                lambda _i: dryrun.dry_run(settings, pass_.default_source_factory)
            )
        )
        run(lambda: dryrun.print_dry_run(snapshot))
        return

    async def one_pass(interruption: runner.Interruption) -> bool:
        store = Store(settings.redis_url)
        try:
            return await pass_.collect_once(
                settings,
                store,
                pass_.default_source_factory,
                interruption=interruption,
                retry_now=retry_now,
            )
        finally:
            await store.aclose()

    async def main(interruption: runner.Interruption) -> Any:
        if loop:
            return await runner.collect_loop(settings, lambda: one_pass(interruption))
        return await one_pass(interruption)

    run(lambda: runner.run_with_signals(main))


@app.command()
def show(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"stats", "posts", "last_update", "status", "history", "post_history"} '
            "as stored (the first channel's; null where missing; history oldest first; "
            "post_history: post id to its series of points), "
            '"channels": every configured channel\'s {"stats", "posts", "history", '
            '"post_history", "admin_stats"} (admin_stats: Telegram\'s statistics for the '
            'channel\'s admins, null when none are stored), and "events": the newest 50 '
            "entries of tg:events.",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Print one line; exit 0 when the last update is fresh, 1 when it is stale "
            "(older than 2 × TG_UPDATE_INTERVAL) or missing. With several channels, fresh "
            "only when every one is; the line names the stale ones. For container health "
            "checks.",
        ),
    ] = False,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            metavar="NAME",
            help="Show this configured channel's detail instead of the first one's "
            "(name, @name or https://t.me/name).",
        ),
    ] = None,
    post: Annotated[
        int | None,
        typer.Option(
            "--post",
            metavar="ID",
            help="Show this post's views over time (a sparkline and its points), in the "
            "first channel or the one --channel names.",
        ),
    ] = None,
) -> None:
    """Show what Redis holds: every channel in a line, then one channel in detail.

    The detail: the channel's growth, the age of its last update, its posts.
    """
    from itam_tgstats.commands import show as view_  # noqa: PLC0415

    if as_json and check:
        raise fail("--json and --check cannot be combined", 2)
    if channel is not None and (as_json or check):
        raise fail("--channel chooses the detail view: not with --json or --check", 2)
    if post is not None and (as_json or check):
        raise fail("--post shows one post's series: not with --json or --check", 2)
    settings = run(lambda: load_settings(need_telegram=False, reads=SHOW_READS))
    detailed = run(lambda: view_.select_channel(settings.channels, channel))
    # The health check (every minute) reads only what freshness needs: no posts, no series,
    # no admin statistics, no events.
    series = as_json or post is not None
    view = run(
        lambda: asyncio.run(
            view_.read_view(
                settings, series=series, admin_stats=not check, events=not check, check=check
            )
        )
    )
    points = None
    if post is not None:
        name = None if channel is None else detailed
        points = run(lambda: view_.post_series(view, name, post))
    if check:
        fresh, line = view_.check_freshness(view, settings.update_interval, time.time())
        typer.echo(line)
        raise typer.Exit(0 if fresh else 1)
    # A channel's text may hold what the output's encoding cannot (emoji on a cp1251
    # console, anything under PYTHONIOENCODING=ascii): print "?" in its place.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    utf8 = "utf" in (getattr(sys.stdout, "encoding", None) or "").lower()
    if as_json:
        typer.echo(view_.json_view(view, ascii_only=not utf8))  # \u escapes lose nothing
        return
    from rich.console import Console  # noqa: PLC0415

    from itam_tgstats.commands import dashboard  # noqa: PLC0415 - rich loads for this view only

    no_color = os.environ.get("NO_COLOR", "") != ""  # https://no-color.org: set and not empty
    # NO_COLOR: no escape sequence at all (rich alone would still print bold).
    console = Console(color_system=None) if no_color else Console()
    # Block characters need a UTF-8 terminal; NO_COLOR or a pipe asks for plain output.
    ascii_only = not utf8 or no_color or not console.is_terminal
    if points is not None:
        dashboard.render_post(
            points, console, post_id=post or 0, channel=detailed, ascii_only=ascii_only
        )
        return
    dashboard.render(
        view,
        console,
        settings.update_interval,
        time.time(),
        ascii_only=ascii_only,
        channel=detailed,
    )


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _ask_credentials(settings: Settings, prompter: TerminalPrompter) -> tuple[int, str]:
    """The configured API id and hash, asking for what is missing; validated by `config`."""
    env = load_environment()
    if not settings.api_id:
        env["TG_API_ID"] = prompter.ask("TG_API_ID (from https://my.telegram.org/apps)")
        # a bad id is named before the next question
        Settings.from_env(env, need_telegram=False, reads=SESSION_READS)
    if not settings.api_hash:
        env["TG_API_HASH"] = prompter.secret("TG_API_HASH (not shown)")
    checked = Settings.from_env(env, reads=SESSION_READS)
    return checked.api_id, checked.api_hash


@app.command()
def session(
    phone: Annotated[
        str | None,
        typer.Option("--phone", help="The account's phone number, e.g. +79990001122."),
    ] = None,
    write_env: Annotated[
        Path | None,
        typer.Option(
            "--write-env",
            metavar="PATH",
            help="Write TG_SESSION_STRING into this .env file (created or updated, mode 0600) "
            "instead of printing it. Other lines are kept as they are. Only a regular file of "
            "yours is written: symbolic links, devices and other users' files are refused.",
        ),
    ] = None,
    telethon: Annotated[
        bool,
        typer.Option(
            "--from-telethon",
            help="Read a Telethon StringSession (the old worker's) on stdin and print the "
            "equivalent Pyrogram string: no login, no network.",
        ),
    ] = False,
) -> None:
    """Log in to Telegram once and print a session string for TG_SESSION_STRING.

    Asks (on stderr) for TG_API_ID and TG_API_HASH when they are not configured, then the
    phone number, the login code Telegram sends to your app, and the two-step verification
    password if the account has one (never echoed). Only the session string goes to stdout,
    so `tgstats session > secret.txt` works.

    The string is the key to the whole account: keep it secret, and prefer a separate
    Telegram account for this job. When `collect` exits 3, the session was revoked: run
    this again. This tool does not sign up new accounts.
    """
    from itam_tgstats.commands import envfile  # noqa: PLC0415
    from itam_tgstats.telegram import login as session_  # noqa: PLC0415

    settings = run(lambda: load_settings(need_telegram=False, reads=SESSION_READS))
    if write_env is not None:  # before the login: a refused path would lose the new session
        run(lambda: envfile.check_env_target(write_env))
    prompter = TerminalPrompter()
    # Ctrl-C at a prompt must interrupt the blocking read; asyncio.run would otherwise
    # take SIGINT over and only cancel its task once the read returns.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        if telethon:
            text = sys.stdin.read()
            result = run(lambda: session_.from_telethon(text, settings.api_id))
        else:
            api_id, api_hash = run(lambda: _ask_credentials(settings, prompter))
            credentials = session_.Credentials(api_id, api_hash)
            result = run(lambda: asyncio.run(session_.login(credentials, prompter, phone=phone)))
        if write_env is None:
            sys.stdout.write(result + "\n")
            return
        try:
            envfile.write_env(write_env, result)
        except ConfigError as e:
            # The login is done and stays active: losing its string would mean another login.
            sys.stdout.write(result + "\n")
            sys.stdout.flush()
            reason = e.message.removesuffix("; nothing was written")
            raise fail(f"{reason}; the session string was printed on stdout instead", 2) from None
        prompter.say(f"TG_SESSION_STRING written to {write_env} (mode 0600).")
    except KeyboardInterrupt:
        raise fail("interrupted: nothing was written", 130) from None


def main() -> None:
    """The console script's entry point."""
    try:
        app()
    except ConfigError as e:  # raised outside `run`, e.g. by a callback
        raise SystemExit(fail(e.message, e.exit_code).exit_code) from None
