"""Settings from the environment (or `.env`), validated all at once before any network call."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from dotenv import dotenv_values

from itam_tgstats.errors import ConfigError
from itam_tgstats.telegram.session_string import (
    SessionData,
    SessionStringError,
    parse_session_string,
)

DEFAULT_CHANNEL = "itatmisis"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# TG_CHANNEL_USERNAME takes a comma-separated list of at most this many channels.
MAX_CHANNELS = 50
# TG_MEDIA_DOWNLOAD: the longest side, in pixels, of the image sizes downloaded.
MEDIA_DOWNLOAD_SIDES: dict[str, int | None] = {"none": None, "small": 320, "large": 1280}
# Telegram's api_id is a 32-bit signed integer on the wire.
API_ID_MAX = 2**31 - 1
# A rejected value is echoed only when it is this short: anything longer may be a secret
# pasted into the wrong variable (an API hash has 32 characters, a session string 350+).
SHOWN_VALUE_MAX = 24
_ASCII_DIGITS = re.compile(r"[0-9]+")

# Telegram usernames: a letter first, then letters, digits and underscores; 4 (collectible
# names) to 32 characters.
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_LINK = re.compile(
    r"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?P<name>[^/?#]+)/?"
)
# Secrets pasted into TG_CHANNEL_USERNAME: an API hash is exactly 32 hexadecimal characters
# (refused even though one starting with a letter a-f would be a valid-looking username),
# a session string is a long run of base64 (Pyrogram's about 350 characters, Telethon's
# "1" and about 350 more).
_API_HASH = re.compile(r"[0-9a-fA-F]{32}")
_SESSION_LIKE = re.compile(r"[A-Za-z0-9_+/=-]{100,}")
# What a redis:// URL's path may be: nothing, or the database number.
_DB_PATH = re.compile(r"/?[0-9]*")


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, validated. Secrets stay out of `repr`."""

    api_id: int
    api_hash: str = field(repr=False)
    session: SessionData | None = field(repr=False)
    channels: tuple[str, ...] = (DEFAULT_CHANNEL,)
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    update_interval: int = 900
    posts_count: int = 5
    log_level: str = "INFO"
    flood_wait_max: int = 60
    timeout: int = 120
    history_days: int = 90
    media_download: str = "none"
    post_history_days: int = 7  # 0: no series of posts over time
    admin_stats_hours: int = 24  # 0: admin statistics are never read
    events_max: int = 10_000  # tg:events' MAXLEN ~; 0: no event written

    @property
    def channel(self) -> str:
        """The first configured channel: the one the original worker's keys describe."""
        return self.channels[0]

    @property
    def media_max_side(self) -> int | None:
        """The longest side of the images to download; None when TG_MEDIA_DOWNLOAD=none."""
        return MEDIA_DOWNLOAD_SIDES[self.media_download]

    @property
    def session_string(self) -> str:
        """The session as a Pyrogram session string (Telethon strings converted)."""
        if self.session is None:
            raise ConfigError("TG_SESSION_STRING is not set: mint one with `tgstats session`")
        return self.session.to_pyrogram(self.api_id)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: Path | None = None,
        *,
        need_telegram: bool = True,
        need_session: bool = False,
        reads: Collection[str] | None = None,
    ) -> Settings:
        """Read settings from `environ` (default: the process) over `env_file` (default: ./.env).

        With `reads`, only those variables are read (so only they can be refused): the
        others keep their defaults, whatever they hold. Raises ConfigError naming every
        missing or invalid variable, in one line.
        """
        env = load_environment(environ, env_file)
        if reads is not None:
            env = {name: value for name, value in env.items() if name in reads}
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() != "" else None

        def integer(name: str, default: int, low: int, high: int) -> int:
            text = get(name)
            if text is None:
                return default
            value = ascii_int(text)
            if value is None or not low <= value <= high:
                problems.append(
                    f"{name} must be an integer from {low} to {high}, got {shown(text)}"
                )
                return default
            return value

        api_id = 0
        api_id_text = get("TG_API_ID")
        if api_id_text is None:
            if need_telegram:
                problems.append("TG_API_ID is not set (get it at https://my.telegram.org/apps)")
        else:
            value = ascii_int(api_id_text)
            if value is None or not 1 <= value <= API_ID_MAX:
                problems.append(
                    f"TG_API_ID must be a positive integer up to {API_ID_MAX}, "
                    f"got {shown(api_id_text)}"
                )
            else:
                api_id = value

        api_hash = get("TG_API_HASH") or ""
        if not api_hash:
            if need_telegram:
                problems.append("TG_API_HASH is not set (get it at https://my.telegram.org/apps)")
        elif not re.fullmatch(r"[0-9a-fA-F]{32}", api_hash):
            # The value is a secret: say what is wrong with it, never what it is.
            problems.append(f"TG_API_HASH must be 32 hexadecimal characters (got {len(api_hash)})")

        session: SessionData | None = None
        session_text = get("TG_SESSION_STRING")
        if session_text is None:
            if need_session:
                problems.append("TG_SESSION_STRING is not set: mint one with `tgstats session`")
        else:
            try:
                session = parse_session_string(session_text)
            except SessionStringError as e:
                problems.append(
                    f"TG_SESSION_STRING is not a Pyrogram or Telethon session string ({e})"
                )

        channels: tuple[str, ...] = (DEFAULT_CHANNEL,)
        channel_text = get("TG_CHANNEL_USERNAME")
        if channel_text is not None:
            parsed, problem = parse_channels(channel_text)
            if problem is not None:
                problems.append(f"TG_CHANNEL_USERNAME {problem}")
            else:
                channels = parsed

        redis_url = get("REDIS_URL") or DEFAULT_REDIS_URL
        redis_problem = redis_url_problem(redis_url)
        if redis_problem is not None:
            problems.append(f"REDIS_URL {redis_problem}")

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(
                f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {shown(get('LOG_LEVEL'))}"
            )
            log_level = "INFO"

        media_download = (get("TG_MEDIA_DOWNLOAD") or "none").lower()
        if media_download not in MEDIA_DOWNLOAD_SIDES:
            problems.append(
                f"TG_MEDIA_DOWNLOAD must be one of {', '.join(MEDIA_DOWNLOAD_SIDES)}, "
                f"got {shown(get('TG_MEDIA_DOWNLOAD'))}"
            )
            media_download = "none"

        settings = cls(
            api_id=api_id,
            api_hash=api_hash,
            session=session,
            channels=channels,
            redis_url=redis_url,
            # Upper bounds keep every value within what Redis expiries and asyncio timers take.
            update_interval=integer("TG_UPDATE_INTERVAL", 900, 1, 7 * 86_400),
            posts_count=integer("TG_POSTS_COUNT", 5, 1, 100),
            log_level=log_level,
            flood_wait_max=integer("TG_FLOOD_WAIT_MAX", 60, 0, 86_400),
            timeout=integer("TG_TIMEOUT", 120, 1, 86_400),
            history_days=integer("TG_HISTORY_DAYS", 90, 1, 36_500),
            media_download=media_download,
            admin_stats_hours=integer("TG_ADMIN_STATS_HOURS", 24, 0, 168),
            post_history_days=post_history_days(get("TG_POST_HISTORY_DAYS"), problems),
            events_max=integer("TG_EVENTS_MAX", 10_000, 0, 1_000_000),
        )
        if problems:
            raise ConfigError("; ".join(problems))
        return settings


def post_history_days(text: str | None, problems: list[str]) -> int:
    """TG_POST_HISTORY_DAYS: 0 (off) or 2 to 30 (default 7). One day is refused: a series
    kept one day never reaches its 24-hour point."""
    value = 7 if text is None else ascii_int(text)
    if value is not None and (value == 0 or 2 <= value <= 30):
        return value
    reason = ": a series kept one day never reaches its 24-hour point" if value == 1 else ""
    problems.append(
        f"TG_POST_HISTORY_DAYS must be 0 (off) or an integer from 2 to 30, got {shown(text)}"
        + reason
    )
    return 7


def load_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> dict[str, str]:
    """The process environment over the `.env` file: real variables win."""
    path = env_file if env_file is not None else Path.cwd() / ".env"
    merged: dict[str, str] = {}
    if path.is_file():
        try:
            values = dotenv_values(path, encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text: save it as UTF-8") from None
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def ascii_int(text: str) -> int | None:
    """The integer written in ASCII digits only (no sign, `_`, exponent or other scripts)."""
    return int(text) if _ASCII_DIGITS.fullmatch(text) else None


def shown(value: str | None) -> str:
    """A rejected value for a message: quoted when short, else only its length (maybe a secret)."""
    if value is None:
        return "nothing"
    if len(value) <= SHOWN_VALUE_MAX and value.isprintable():
        return repr(value)
    return f"a value of {len(value)} characters (not shown: it may be a secret)"


def parse_channels(text: str) -> tuple[tuple[str, ...], str | None]:
    """The usernames of a comma-separated list, and what is wrong with it (None: nothing)."""
    items = [item.strip() for item in text.split(",")]
    names: list[str] = []
    for position, item in enumerate(items, 1):
        where = f"item {position} " if len(items) > 1 else ""
        if looks_like_secret(item):
            # Never echoed, sent to Telegram, or written into key names.
            return (), f"{where}looks like an API hash or session string, not a channel name"
        name = parse_channel(item)
        if name is None:
            return (), (
                f"{where}must be a public channel username "
                f"(name, @name or https://t.me/name), got {shown(item)}"
            )
        if name.lower() in (n.lower() for n in names):
            return (), f"names @{name.lower()} twice (names are not case-sensitive)"
        names.append(name)
    if len(names) > MAX_CHANNELS:
        return (), f"names {len(names)} channels; at most {MAX_CHANNELS} are read in one pass"
    return tuple(names), None


def looks_like_secret(text: str) -> bool:
    """Whether a channel name is rather an API hash (32 hexadecimal characters) or a session
    string (100 or more base64 characters), also as `@…` or in a t.me link."""
    text = text.strip()
    match = _LINK.fullmatch(text)
    name = match.group("name") if match else text.removeprefix("@")
    return any(p.fullmatch(t) for p in (_API_HASH, _SESSION_LIKE) for t in (text, name))


def channel_key_name(username: str) -> str:
    """A configured channel's name in Redis keys: lower-cased, without `@`."""
    return username.lower()


def parse_channel(text: str) -> str | None:
    """The username in `name`, `@name` or a t.me link; None when it cannot be one."""
    text = text.strip()
    match = _LINK.fullmatch(text)
    if match:
        text = match.group("name")
    elif text.startswith("@"):
        text = text[1:]
    return text if _USERNAME.fullmatch(text) and not text.endswith("_") else None


def redis_url_problem(url: str) -> str | None:
    """What redis-py would reject in `url` (None when it takes it).

    Never echoes any part of the URL: a password may sit in its userinfo, its path (a `/`
    not percent-encoded ends the host) or its query (an `&` not encoded starts an option).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL (check the host and port)"
    if parts.scheme not in REDIS_SCHEMES:
        return "must be a redis://, rediss:// or unix:// URL"
    if not (parts.path if parts.scheme == "unix" else parts.hostname):
        return "names no socket path" if parts.scheme == "unix" else "names no host"
    if parts.scheme != "unix" and not _DB_PATH.fullmatch(unquote(parts.path)):
        # redis-py would quietly use database 0; the path is likely a piece of a password.
        return (
            "has a path that is not a database number (redis://host:port/<db>; "
            "percent-encode / ? # @ in a password)"
        )
    return _redis_py_problem(url)


def _redis_py_problem(url: str) -> str | None:
    """What redis-py rejects in the query options of `url` (`?socket_timeout=abc` or an
    unknown `?foo=bar`), found by building (without connecting) the connection it would open."""
    from redis.asyncio import Redis  # noqa: PLC0415 - only commands that use Redis need it
    from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS  # noqa: PLC0415

    try:
        Redis.from_url(url).connection_pool.make_connection()  # type: ignore[no-untyped-call]
    except ValueError as e:
        # Named only when it is one of redis-py's own options: anything else in the query
        # may be a piece of a password.
        option = re.fullmatch(r"Invalid value for '(\w+)' in connection URL\.", str(e))
        if option and option.group(1) in URL_QUERY_ARGUMENT_PARSERS:
            return f"is not accepted by redis-py: {option.group()}"
        return "is not accepted by redis-py (details not shown: they may hold a password)"
    except TypeError:
        return (
            "has an option redis-py does not know (not shown: it may be a piece of a password; "
            "percent-encode & = # in a password)"
        )
    return None


def describe_redis_url(url: str) -> str:
    """Where a Redis URL points, for messages: host and port (or socket path) and the
    database when it is a number; never its userinfo, query or any other path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the configured Redis"
    # As redis-py reads it: `?db=` first, else the path.
    query = parse_qs(parts.query)
    db = query["db"][0] if query.get("db") else "0"
    if parts.scheme == "unix":
        where = f"unix socket {parts.path}"
    else:
        where = f"{parts.hostname}:{port or 6379}"
        path = unquote(parts.path)
        if not query.get("db") and path.strip("/"):
            db = path.strip("/") if _DB_PATH.fullmatch(path) else ""
    return f"{where} db {db}" if db.isdigit() and db.isascii() else where
