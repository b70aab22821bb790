"""`tgstats session`: log in once, interactively, and hand back a Pyrogram session string.

Prompts and messages go through a `Prompter` (the CLI's: stderr, password hidden), so the
session string is the only thing the command prints on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from itam_tgstats.errors import ConfigError, SessionError, TelegramError, describe, rpc_error_id
from itam_tgstats.telegram.session_string import SessionStringError, parse_session_string

log = logging.getLogger(__name__)

T = TypeVar("T")

# What --phone and the prompt expect; Telegram refuses anything else as PHONE_NUMBER_INVALID.
PHONE_EXAMPLE = "+79990001122"

CODE_ATTEMPTS = 3
PASSWORD_ATTEMPTS = 3
WARNING = (
    "A session string is the key to the whole Telegram account: anyone who has it can read "
    "and send messages as you. Keep it in .env or a secret store, never in git. A separate "
    "Telegram account for this job is wiser than your own."
)


class Prompter(Protocol):
    """How the login talks to the person."""

    def ask(self, prompt: str) -> str:
        """A visible answer."""
        ...

    def secret(self, prompt: str) -> str:
        """An answer that is not echoed."""
        ...

    def say(self, message: str) -> None:
        """A message (never on stdout)."""
        ...


@dataclass(frozen=True)
class Credentials:
    """The application's API id and hash, from my.telegram.org."""

    api_id: int
    api_hash: str

    def __repr__(self) -> str:
        return f"Credentials(api_id={self.api_id}, api_hash=***)"


async def login(
    credentials: Credentials,
    prompter: Prompter,
    *,
    phone: str | None = None,
    protocol_factory: Any = None,
) -> str:
    """Log in with phone, code and (if set) 2FA password; return the Pyrogram session string."""
    from pyrogram import Client  # noqa: PLC0415 - only this command needs it at this point
    from pyrogram import errors as tg  # noqa: PLC0415

    from itam_tgstats.telegram.connect import close_client  # noqa: PLC0415
    from itam_tgstats.telegram.reach import traced  # noqa: PLC0415

    client = Client(
        name="tgstats-login",
        api_id=credentials.api_id,
        api_hash=credentials.api_hash,
        in_memory=True,
        no_updates=True,
        sleep_threshold=0,
        # The transport notes where it dialled and why it failed, for the error line.
        protocol_factory=traced(protocol_factory),
    )
    prompter.say(WARNING)
    log.debug("connecting to Telegram to log in (API id %s)", credentials.api_id)
    await _connect(client)
    try:
        phone = (phone or prompter.ask("Phone number, international format (+7…)")).strip()
        await _sign_in(client, prompter, phone, tg)
        session_string: str = await client.export_session_string()
    except tg.FloodWait as e:
        raise TelegramError(
            f"Telegram asks to wait {e.value} s before it sends another code; try again then"
        ) from None
    except tg.PhoneNumberInvalid:
        raise ConfigError(
            f"{phone!r} is not a valid phone number (PHONE_NUMBER_INVALID): give it in "
            f"international format, + and the country code, e.g. {PHONE_EXAMPLE}"
        ) from None
    except tg.PhoneNumberBanned:
        raise TelegramError(
            f"Telegram has banned the phone number {phone} (PHONE_NUMBER_BANNED); "
            "log in with another account"
        ) from None
    except tg.PhoneNumberFlood:
        raise TelegramError(
            f"Telegram sends no more login codes to {phone} for now: too many tries "
            "(PHONE_NUMBER_FLOOD); try again in a few hours"
        ) from None
    except tg.RPCError as e:
        raise TelegramError(f"Telegram refused the login: {rpc_error_id(e)}") from None
    finally:
        await close_client(client)
    prompter.say("Logged in. The session string follows on stdout.")
    return session_string


async def _connect(client: Any) -> None:
    """Connect, or raise TelegramError with the client closed (telegram.connect.connect_client)."""
    from itam_tgstats.telegram.connect import connect_client  # noqa: PLC0415 - loads Pyrogram

    await connect_client(client)


async def _network(call: Awaitable[T]) -> T:
    """Await one of the client's calls; a network failure Pyrogram gave up on is TelegramError.

    Once connected, Pyrogram retries a broken connection and server errors itself and then
    raises TimeoutError ("Failed to invoke … after 10 retries"), or an OSError such as
    ConnectionError when the client lost its connection: the line says which in words, a
    DEBUG line gives Pyrogram's own. Only the calls are wrapped: an OSError from reading
    the terminal is not Telegram's.
    """
    from itam_tgstats.telegram.reach import call_words  # noqa: PLC0415

    try:
        return await call
    except OSError as e:  # TimeoutError included
        log.debug("a login call failed: %s", describe(e))
        raise TelegramError(
            f"cannot reach Telegram: the login was cut off ({call_words(e)}); try again"
        ) from None


async def _sign_in(client: Any, prompter: Prompter, phone: str, tg: Any) -> None:
    """The code (and password) part of the login; returns once the account is logged in."""
    sent = await _send_code(client, phone, tg)
    for attempt in range(1, CODE_ATTEMPTS + 1):
        code = prompter.ask("Login code (Telegram sent it to your app)").strip()
        try:
            user = await _network(client.sign_in(phone, sent.phone_code_hash, code))
        except tg.PhoneCodeInvalid:
            if attempt == CODE_ATTEMPTS:
                raise SessionError(
                    f"wrong login code {CODE_ATTEMPTS} times; run `tgstats session` again"
                ) from None
            prompter.say("That code is wrong; try again.")
            continue
        except tg.PhoneCodeExpired:
            prompter.say("That code expired; Telegram is sending a new one.")
            sent = await _send_code(client, phone, tg)
            continue
        except tg.SessionPasswordNeeded:
            await _check_password(client, prompter, tg)
            return
        if not user:  # sign-up required: the number has no Telegram account
            raise _no_account(phone)
        return
    raise SessionError(f"no valid login code in {CODE_ATTEMPTS} tries; run `tgstats session` again")


def _no_account(phone: str) -> SessionError:
    return SessionError(
        f"{phone} has no Telegram account; this tool does not sign up new accounts: "
        "register it with an official Telegram app first"
    )


async def _send_code(client: Any, phone: str, tg: Any) -> Any:
    try:
        return await _network(client.send_code(phone))
    except tg.PhoneNumberUnoccupied:
        raise _no_account(phone) from None


async def _check_password(client: Any, prompter: Prompter, tg: Any) -> None:
    for attempt in range(1, PASSWORD_ATTEMPTS + 1):
        password = prompter.secret("Two-step verification password")
        try:
            await _network(client.check_password(password))
        except tg.PasswordHashInvalid:
            if attempt == PASSWORD_ATTEMPTS:
                raise SessionError(
                    f"wrong password {PASSWORD_ATTEMPTS} times; run `tgstats session` again"
                ) from None
            prompter.say("That password is wrong; try again.")
        else:
            return


def from_telethon(text: str, api_id: int) -> str:
    """A Telethon StringSession as the equivalent Pyrogram session string."""
    try:
        data = parse_session_string(text)
    except SessionStringError as e:
        raise ConfigError(f"stdin does not hold a Telethon session string ({e})") from None
    if data.source != "telethon":
        raise ConfigError("stdin holds a Pyrogram session string already, not a Telethon one")
    return data.to_pyrogram(api_id)
