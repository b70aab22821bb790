"""The few errors the library raises; the CLI turns each into its exit code, in one place."""

from __future__ import annotations

import re

from itam_tgstats.escapes import escape_controls


class TgStatsError(Exception):
    """Base of every expected failure: a one-line message and an exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(TgStatsError):
    """A setting is missing or invalid."""

    exit_code = 2


class SessionError(TgStatsError):
    """The Telegram session is not authorized any more."""

    exit_code = 3


class TelegramError(TgStatsError):
    """Telegram refused or failed: channel missing or private, long FloodWait, network, timeout."""

    exit_code = 4

    def __init__(self, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(message)
        # Unix time before which Telegram asked us not to call again (a long FloodWait).
        self.retry_at = retry_at


class ChannelError(TelegramError):
    """One channel cannot be read (missing, private, not a channel); the others still can.

    Such a failure is the channel's own: it backs off (see status.py).
    """

    backs_off = True

    def __init__(self, username: str, message: str, *, backs_off: bool | None = None) -> None:
        super().__init__(message)
        self.username = username
        if backs_off is not None:
            self.backs_off = backs_off


class ChannelSkipped(ChannelError):
    """A channel not asked about this pass: its backoff after failing on its own runs."""

    backs_off = False


class ChannelParseError(ChannelError):
    """A bug met while turning one channel's answer into its snapshot (exit 1); the other
    channels are still written. Raised from the original exception (its traceback)."""

    exit_code = 1
    backs_off = False


class ChannelsFailed(TelegramError):
    """Several configured channels failed; `partial` when the others were read and written.

    Exit 1 when one of them failed on a bug, else 4.
    """

    def __init__(self, failures: list[ChannelError], total: int) -> None:
        reasons = "; ".join(f.message for f in failures)
        super().__init__(f"{len(failures)} of {total} channels failed: {reasons}")
        self.failures = failures
        self.partial = len(failures) < total
        self.exit_code = min(f.exit_code for f in failures) if failures else 4


class LockLost(TgStatsError):
    """The pass no longer holds `tg:lock` (it expired, or Redis lost it): it writes nothing."""

    exit_code = 4


class StoreError(TgStatsError):
    """Redis is unreachable or failing."""

    exit_code = 5


class TransactionRefused(StoreError):
    """Redis refused part of a pass's MULTI/EXEC, and applied the rest."""


class Interrupted(TgStatsError):
    """The pass was stopped by SIGINT or SIGTERM."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(f"interrupted by {signal_name}: nothing partial was written")
        self.exit_code = exit_code


def one_line(text: str, limit: int = 500) -> str:
    """Text as one line (whitespace runs, newlines included, become one space), cut at `limit`."""
    return " ".join(text.split())[:limit]


def describe(error: BaseException, limit: int = 300) -> str:
    """An exception as one short line: `KeyError: 0`, `ConnectionError`."""
    text = one_line(str(error), limit)
    return f"{type(error).__name__}: {text}"[:limit] if text else type(error).__name__


# How Pyrogram keeps an error it has no class for: `[400 SOME_NEW_ERROR]` in its value.
_UNKNOWN_RPC_ERROR = re.compile(r"\[(-?\d+) (.*)\]", re.DOTALL)


def rpc_error_id(error: BaseException, *, with_code: bool = True) -> str:
    """Telegram's error code and id, `400 CHANNEL_PRIVATE` (`with_code` False: the id alone),
    from a Pyrogram RPCError.

    An id Pyrogram has no class for gets the class of its code's category, whose ID is None:
    the id is then read back from the error's value, as Telegram sent it. One line, at most
    100 characters, control and format characters escaped: Telegram's text is not ours.
    """
    code, ident = getattr(error, "CODE", None), getattr(error, "ID", None)
    value = getattr(error, "value", None)
    if ident is None and isinstance(value, str):
        sent = _UNKNOWN_RPC_ERROR.fullmatch(value)
        if sent is not None:
            code, ident = sent[1], sent[2]
    text = str(ident) if ident is not None else type(error).__name__
    return escape_controls(one_line(f"{code} {text}" if with_code else text, 100))
