"""Settings from the environment (or `.env`), validated all at once before any network call."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from itam_tgstats.errors import ConfigError
from itam_tgstats.sessions import SessionData, SessionStringError, parse_session_string

DEFAULT_CHANNEL = "itatmisis"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REDIS_SCHEMES = ("redis", "rediss", "unix")

# Telegram usernames: a letter first, then letters, digits and underscores; 4 (collectible
# names) to 32 characters.
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_LINK = re.compile(
    r"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?P<name>[^/?#]+)/?"
)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs, validated. Secrets stay out of `repr`."""

    api_id: int
    api_hash: str = field(repr=False)
    session: SessionData | None = field(repr=False)
    channel: str = DEFAULT_CHANNEL
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    update_interval: int = 900
    posts_count: int = 5
    log_level: str = "INFO"
    flood_wait_max: int = 60
    timeout: int = 120
    history_days: int = 90

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
    ) -> Settings:
        """Read settings from `environ` (default: the process) over `env_file` (default: ./.env).

        Raises ConfigError naming every missing or invalid variable, in one line.
        """
        env = load_environment(environ, env_file)
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() != "" else None

        def integer(name: str, default: int, low: int, high: int | None = None) -> int:
            text = get(name)
            if text is None:
                return default
            try:
                value = int(text)
            except ValueError:
                value = low - 1
            if value < low or (high is not None and value > high):
                expected = f"from {low} to {high}" if high is not None else f"of at least {low}"
                problems.append(f"{name} must be an integer {expected}, got {text!r}")
                return default
            return value

        api_id = 0
        api_id_text = get("TG_API_ID")
        if api_id_text is None:
            if need_telegram:
                problems.append("TG_API_ID is not set (get it at https://my.telegram.org/apps)")
        elif not api_id_text.isdigit() or int(api_id_text) <= 0:
            problems.append(f"TG_API_ID must be a positive integer, got {api_id_text!r}")
        else:
            api_id = int(api_id_text)

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

        channel = DEFAULT_CHANNEL
        channel_text = get("TG_CHANNEL_USERNAME")
        if channel_text is not None:
            parsed = parse_channel(channel_text)
            if parsed is None:
                problems.append(
                    "TG_CHANNEL_USERNAME must be a public channel username "
                    f"(name, @name or https://t.me/name), got {channel_text!r}"
                )
            else:
                channel = parsed

        redis_url = get("REDIS_URL") or DEFAULT_REDIS_URL
        if not valid_redis_url(redis_url):
            problems.append(
                "REDIS_URL must be a redis://, rediss:// or unix:// URL, "
                f"got {redact_url(redis_url)!r}"
            )

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(
                f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {get('LOG_LEVEL')!r}"
            )
            log_level = "INFO"

        settings = cls(
            api_id=api_id,
            api_hash=api_hash,
            session=session,
            channel=channel,
            redis_url=redis_url,
            update_interval=integer("TG_UPDATE_INTERVAL", 900, 1),
            posts_count=integer("TG_POSTS_COUNT", 5, 1, 100),
            log_level=log_level,
            flood_wait_max=integer("TG_FLOOD_WAIT_MAX", 60, 0),
            timeout=integer("TG_TIMEOUT", 120, 1),
            history_days=integer("TG_HISTORY_DAYS", 90, 1),
        )
        if problems:
            raise ConfigError("; ".join(problems))
        return settings


def load_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> dict[str, str]:
    """The process environment over the `.env` file: real variables win."""
    path = env_file if env_file is not None else Path.cwd() / ".env"
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def parse_channel(text: str) -> str | None:
    """The username in `name`, `@name` or a t.me link; None when it cannot be one."""
    text = text.strip()
    match = _LINK.fullmatch(text)
    if match:
        text = match.group("name")
    elif text.startswith("@"):
        text = text[1:]
    return text if _USERNAME.fullmatch(text) and not text.endswith("_") else None


def valid_redis_url(url: str) -> bool:
    """Whether redis-py can take `url`: a known scheme and, for TCP, a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme not in REDIS_SCHEMES:
        return False
    return bool(parts.path) if parts.scheme == "unix" else bool(parts.hostname)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
