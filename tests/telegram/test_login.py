"""`tgstats session`: the whole login against the stand-in Telegram (real handshake, real SRP)."""

from __future__ import annotations

import asyncio
import base64
import errno
import functools
import logging
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
from pyrogram import Client
from pyrogram.session import Session
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.commands import envfile
from itam_tgstats.errors import ConfigError, SessionError, TelegramError
from itam_tgstats.telegram import login as session_module
from itam_tgstats.telegram.login import Credentials, login
from itam_tgstats.telegram.session_string import parse_session_string
from tests.conftest import FAKE_API_HASH
from tests.fakeauth import FakeAccount
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass

REPO = Path(__file__).resolve().parents[2]
CREDENTIALS = Credentials(12345, FAKE_API_HASH)
PHONE = "+70000000001"
PASSWORD = "correct horse battery staple"


class Script:
    """A person at the prompts: answers in order, and what they were told."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.said: list[str] = []

    def ask(self, prompt: str) -> str:
        self.asked.append(prompt)
        return self.answers.pop(0)

    def secret(self, prompt: str) -> str:
        self.asked.append(f"(hidden) {prompt}")
        return self.answers.pop(0)

    def say(self, message: str) -> None:
        self.said.append(message)


@pytest.fixture
def server(fake_tg: FakeTelegram) -> FakeTelegram:
    fake_tg.add_account(FakeAccount(phone="70000000001", user_id=424242))
    fake_tg.add_account(FakeAccount(phone="70000000002", user_id=535353, password=PASSWORD))
    return fake_tg


def do_login(fake: FakeTelegram, script: Script, phone: str = PHONE) -> str:
    return asyncio.run(
        login(CREDENTIALS, script, phone=phone, protocol_factory=fake.protocol_factory)
    )


def test_login_mints_a_working_session(server: FakeTelegram, redis_url: str) -> None:
    script = Script("12345")
    minted = do_login(server, script)
    data = parse_session_string(minted)
    assert (data.user_id, data.dc_id, data.api_id) == (424242, 2, 12345)
    assert server.logged_in[bytes.fromhex(data.auth_key_id)] == 424242
    assert server.calls[:3] == ["ReqPqMulti", "ReqDHParams", "SetClientDHParams"]
    assert server.api_calls[-2:] == ["auth.SendCode", "auth.SignIn"]
    assert "key to the whole Telegram account" in script.said[0]
    # the new session reads the channel
    assert run_pass(make_settings(server, redis_url, TG_SESSION_STRING=minted), server)


def test_two_step_password_verifies_with_srp(server: FakeTelegram) -> None:
    script = Script("12345", "wrong password", PASSWORD)
    data = parse_session_string(do_login(server, script, "+70000000002"))
    assert data.user_id == 535353
    assert "That password is wrong; try again." in script.said
    assert script.asked.count("(hidden) Two-step verification password") == 2
    assert server.api_calls.count("auth.CheckPassword") == 2


def test_wrong_password_three_times_gives_up(server: FakeTelegram) -> None:
    with pytest.raises(SessionError, match="wrong password 3 times"):
        do_login(server, Script("12345", "a", "b", "c"), "+70000000002")


def test_wrong_code_is_asked_again_up_to_three_times(server: FakeTelegram) -> None:
    script = Script("11111", "22222", "12345")
    assert parse_session_string(do_login(server, script)).user_id == 424242
    assert script.said.count("That code is wrong; try again.") == 2
    with pytest.raises(SessionError) as caught:
        do_login(server, Script("1", "2", "3"))
    assert str(caught.value) == "wrong login code 3 times; run `tgstats session` again"


def test_expired_code_sends_a_new_one(server: FakeTelegram) -> None:
    server.expire_next_codes = 1
    script = Script("12345", "12345")
    assert parse_session_string(do_login(server, script)).user_id == 424242
    assert "That code expired; Telegram is sending a new one." in script.said
    assert server.api_calls.count("auth.SendCode") == 2


def test_flood_wait_on_sending_the_code(server: FakeTelegram) -> None:
    server.fail("auth.SendCode", "FLOOD_WAIT_300")
    with pytest.raises(TelegramError) as caught:
        do_login(server, Script())
    assert str(caught.value) == (
        "Telegram asks to wait 300 s before it sends another code; try again then"
    )


def test_unregistered_phone_is_not_signed_up(server: FakeTelegram) -> None:
    with pytest.raises(SessionError) as caught:
        do_login(server, Script("12345"), "+79990000000")
    assert str(caught.value) == (
        "+79990000000 has no Telegram account; this tool does not sign up new accounts: "
        "register it with an official Telegram app first"
    )


def auth_calls(fake: FakeTelegram) -> list[str]:
    """The login's calls, without the auth key handshake."""
    return [c for c in fake.api_calls if c.startswith("auth.")]


def test_a_mistyped_phone_number_is_bad_input_naming_the_format(
    env: dict[str, str], server: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A number cut short: Telegram (and the stand-in) answer PHONE_NUMBER_INVALID."""
    login_in_cli(server, monkeypatch)
    result = CliRunner().invoke(app, ["session"], input="+7 999\n")
    assert (result.exit_code, result.stdout) == (2, "")
    # the prompt's line, then the error (CliRunner does not echo the answer)
    assert result.stderr.endswith(
        "Phone number, international format (+7…): "
        "error: '+7 999' is not a valid phone number (PHONE_NUMBER_INVALID): give it in "
        "international format, + and the country code, e.g. +79990001122\n"
    )
    assert auth_calls(server) == ["auth.SendCode"]
    server.fail("auth.SendCode", "PHONE_NUMBER_INVALID")  # whatever the number looks like
    with pytest.raises(ConfigError) as caught:
        do_login(server, Script())
    assert str(caught.value).startswith(f"'{PHONE}' is not a valid phone number")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            "PHONE_NUMBER_BANNED",
            f"Telegram has banned the phone number {PHONE} (PHONE_NUMBER_BANNED); "
            "log in with another account",
        ),
        (
            "PHONE_NUMBER_FLOOD",
            f"Telegram sends no more login codes to {PHONE} for now: too many tries "
            "(PHONE_NUMBER_FLOOD); try again in a few hours",
        ),
    ],
)
def test_a_phone_number_telegram_refuses_is_a_telegram_error(
    server: FakeTelegram, error: str, message: str
) -> None:
    server.fail("auth.SendCode", error)
    with pytest.raises(TelegramError) as caught:
        do_login(server, Script())
    assert (caught.value.exit_code, str(caught.value)) == (4, message)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pyrogram's own retries (10 of them) without its 1 s pause between them."""
    original = Client.invoke
    monkeypatch.setattr(Client, "invoke", functools.partialmethod(original, retry_delay=0.01))
    return int(Session.MAX_RETRIES)


def login_in_cli(fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch, after: Any = None) -> None:
    """The CLI's login goes to the stand-in; `after()` runs once it succeeded."""

    async def against_fake(*args: Any, **kwargs: Any) -> str:
        minted = await login(*args, protocol_factory=fake.protocol_factory, **kwargs)
        if after is not None:
            after()
        return minted

    monkeypatch.setattr(session_module, "login", against_fake)


def test_server_errors_mid_login_end_as_one_line_exit_4(
    env: dict[str, str],
    server: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    quick_retries: int,
) -> None:
    """Connected, then auth.sendCode fails until Pyrogram gives up: TimeoutError inside."""
    login_in_cli(server, monkeypatch)
    server.fail("auth.SendCode", "INTERNAL", times=quick_retries)
    result = CliRunner().invoke(app, ["session", "--phone", PHONE])
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr.splitlines()[-1] == (
        "error: cannot reach Telegram: the login was cut off "
        f"(no good answer in {quick_retries} tries); try again"
    )
    assert "Traceback" not in result.stderr
    assert auth_calls(server) == ["auth.SendCode"] * quick_retries
    assert server.open_connections == 0


def cut_off_at_the_code(fake: FakeTelegram) -> tuple[Script, type]:
    """A person at the prompts, and the stand-in's transport whose sends fail (connection
    reset) from the moment the login code is asked: the network goes away mid-login."""

    class Breaking(fake.protocol_factory):  # type: ignore[misc, name-defined]
        broken = False

        async def send(self, data: bytes) -> None:
            if Breaking.broken:
                raise ConnectionResetError(104, "Connection reset by peer")
            await super().send(data)

    class CutOff(Script):
        def ask(self, prompt: str) -> str:
            if prompt.startswith("Login code"):
                Breaking.broken = True
            return super().ask(prompt)

    return CutOff("12345"), Breaking


def test_a_connection_lost_mid_login_is_one_telegram_error(
    server: FakeTelegram, quick_retries: int
) -> None:
    script, transport = cut_off_at_the_code(server)
    with pytest.raises(TelegramError) as caught:
        asyncio.run(login(CREDENTIALS, script, phone=PHONE, protocol_factory=transport))
    assert str(caught.value) == (
        "cannot reach Telegram: the login was cut off "
        f"(no good answer in {quick_retries} tries); try again"
    )
    assert auth_calls(server) == ["auth.SendCode"]  # the sign-in never got through
    assert server.open_connections == 0


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionResetError(104, "Connection reset by peer"), "the connection was cut"),
        (ConnectionError("Client has not been started yet"), "the connection was lost"),
        (TimeoutError("Request timed out"), "no answer in time"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "the network is unreachable"),
        (OSError(errno.EIO, "Input/output error"), "input/output error"),
    ],
)  # fmt: skip
def test_any_os_error_from_a_login_call_is_one_telegram_error(error: OSError, reason: str) -> None:
    async def call() -> None:
        raise error

    with pytest.raises(TelegramError) as caught:
        asyncio.run(session_module._network(call()))
    assert str(caught.value) == (
        f"cannot reach Telegram: the login was cut off ({reason}); try again"
    )


def telethon_string(fake: FakeTelegram, ipv6: bool) -> str:
    if ipv6:
        packed = struct.pack(">B16sH256s", 4, bytes.fromhex("20010b28f23f" + "00" * 9 + "0a"), 443,
                             fake.auth_key)  # fmt: skip
    else:
        packed = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, fake.auth_key)
    return "1" + base64.urlsafe_b64encode(packed).decode()


def no_login(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace the login by a recorder: what the CLI would have sent to Telegram."""
    logins: list[object] = []

    async def record(*args: object, **kwargs: object) -> str:
        logins.append((args, kwargs))
        raise AssertionError("the login started")

    monkeypatch.setattr(session_module, "login", record)
    return logins


@pytest.mark.parametrize("ipv6", [False, True])
def test_from_telethon_converts_without_login(
    env: dict[str, str], fake_tg: FakeTelegram, ipv6: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    logins = no_login(monkeypatch)
    result = CliRunner().invoke(app, ["session", "--from-telethon"],
                                input=telethon_string(fake_tg, ipv6) + "\n")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = parse_session_string(result.stdout.strip())
    assert (data.auth_key, data.dc_id, data.api_id, data.source) == (
        fake_tg.auth_key,
        4 if ipv6 else 2,
        12345,
        "pyrogram",
    )
    assert result.stdout.count("\n") == 1 and logins == []


def test_from_telethon_rejects_garbage_without_echoing_it(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["session", "--from-telethon"], input="s3cr3t-garbage\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: stdin does not hold a Telethon session string (")
    assert "s3cr3t" not in result.stderr and result.stdout == ""


def spawn_session(tmp_path: Path, *args: str, password: str = PASSWORD) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update({"TG_API_ID": "12345", "TG_API_HASH": FAKE_API_HASH, "PYTHONPATH": str(REPO),
                "FAKE_TG_PASSWORD": password})  # fmt: skip
    command = f"exec {sys.executable} -m tests.fake_tgstats session {' '.join(args)} > out.txt"
    return pexpect.spawn("/bin/sh", ["-c", command], cwd=str(tmp_path), env=env,
                         encoding="utf-8", timeout=60)  # fmt: skip


def test_login_through_a_terminal(tmp_path: Path, fake_tg: FakeTelegram) -> None:
    child = spawn_session(tmp_path)
    child.expect("Phone number")
    child.sendline(PHONE)
    child.expect("Login code")
    child.sendline("12345")
    child.expect("Two-step verification password: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert PASSWORD not in transcript  # not echoed
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert len(lines) == 1
    data = parse_session_string(lines[0])
    assert (data.user_id, data.api_id, data.dc_id) == (fake_tg.user_id, 12345, 2)


def test_ctrl_c_at_a_prompt_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    child = spawn_session(tmp_path, "--write-env", "secret.env")
    child.expect("Phone number")
    child.sendline(PHONE)
    child.expect("Login code")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "error: interrupted: nothing was written" in (child.before or "")
    assert not (tmp_path / "secret.env").exists()
    assert (tmp_path / "out.txt").read_text() == ""


def test_session_needs_no_configuration_to_start(tmp_path: Path) -> None:
    """Asked for the API id when it is not set; a bad one is named and nothing happens:
    no other question, no login, no file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env["PYTHONPATH"] = str(REPO)
    child = pexpect.spawn(sys.executable, ["-m", "tests.fake_tgstats", "session"],
                          cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60)  # fmt: skip
    child.expect("TG_API_ID")
    child.sendline("not-a-number")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    transcript = child.before or ""
    # the message itself is pinned by the config tests
    assert transcript.endswith("'not-a-number'\r\n")
    assert transcript.count("error: TG_API_ID must be a positive integer") == 1
    assert "TG_API_HASH" not in transcript and "Phone number" not in transcript
    assert session_module.WARNING[:40] not in transcript  # said just before connecting
    assert list(tmp_path.iterdir()) == []


# --- a network that is not Telegram -------------------------------------------------------


# What the one line says when Pyrogram's decoder or handshake fails on what answered.
NOT_TELEGRAM = "what answered was not Telegram: a firewall or proxy in the way?"


class GarbageTransport:
    """A middlebox on Telegram's port: accepts the connection, answers zeros to anything."""

    def __init__(self, **_: object) -> None:
        self.closed = False

    async def connect(self, _address: tuple[str, int]) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def send(self, _data: bytes) -> None:
        pass

    async def recv(self) -> bytes | None:
        return bytes(64)  # constructor id 0: Pyrogram's TL decoder dies with KeyError: 0


class RefusingTransport(GarbageTransport):
    async def connect(self, _address: tuple[str, int]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


def mute_after_handshake(fake: FakeTelegram) -> type:
    """The handshake goes through, then nothing ever answers."""

    class Mute(fake.protocol_factory):  # type: ignore[misc, name-defined]
        async def send(self, data: bytes) -> None:
            if data[:8] == bytes(8):  # unencrypted: the auth key handshake
                await super().send(data)

    return Mute


@pytest.mark.parametrize(
    ("transport", "reason"),
    [
        (lambda _fake: RefusingTransport, "connection refused"),
        (mute_after_handshake, "no answer in time"),
    ],
    ids=["refused", "silent"],
)
def test_a_connection_that_cannot_be_set_up_is_one_telegram_error(
    fake_tg: FakeTelegram, transport: Any, reason: str
) -> None:
    """Nothing asked, nothing left retrying: Pyrogram would retry the silent one for minutes."""
    script = Script()
    started = time.monotonic()
    with pytest.raises(TelegramError) as caught:
        asyncio.run(login(CREDENTIALS, script, protocol_factory=transport(fake_tg)))
    assert str(caught.value) == (
        f"cannot reach Telegram: the connection could not be set up ({reason})"
    )
    assert script.asked == [] and fake_tg.open_connections == 0
    assert time.monotonic() - started < 10  # measured: 3 s refused (Pyrogram's 3 tries), 2 s silent


@pytest.mark.parametrize(
    ("transport", "words", "cause"),
    [
        (RefusingTransport, "connection refused",
         "the network said ConnectionRefusedError: [Errno 111] Connection refused"),
        (GarbageTransport, NOT_TELEGRAM, "KeyError: 0"),
    ],
    ids=["refused", "garbage"],
)  # fmt: skip
def test_debug_logs_the_data_center_the_address_and_the_low_level_cause(
    caplog: pytest.LogCaptureFixture, transport: type, words: str, cause: str
) -> None:
    """The one line says what failed in words; LOG_LEVEL=DEBUG says where, and Python's own
    names for it."""
    with (
        caplog.at_level(logging.DEBUG, logger="itam_tgstats"),
        pytest.raises(TelegramError) as caught,
    ):
        asyncio.run(login(CREDENTIALS, Script(), protocol_factory=transport))
    assert (
        str(caught.value) == f"cannot reach Telegram: the connection could not be set up ({words})"
    )
    assert "Error" not in str(caught.value)
    [line] = [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]
    # a new login dials data center 2 at Pyrogram's own production address
    assert line.startswith("cannot connect to Telegram's data center 2 at 149.154.167.51:443: ")
    assert cause in line


class BrokenClient:
    """Just enough of a Pyrogram Client for `_connect`: connect() raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.is_connected = False
        self.storage = self
        self.conn: object | None = object()

    async def connect(self) -> None:
        raise self.error

    async def close(self) -> None:  # the storage's
        self.conn = None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (KeyError(0), NOT_TELEGRAM),
        (RuntimeError("Public key not found"), NOT_TELEGRAM),
        (ValueError("bad\npacket"), NOT_TELEGRAM),
        (OSError(), "the connection failed"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    ],
)
def test_any_exception_while_connecting_is_one_line_and_closes_the_client(
    error: Exception, reason: str
) -> None:
    client = BrokenClient(error)
    with pytest.raises(TelegramError) as caught:
        asyncio.run(session_module._connect(client))
    assert str(caught.value) == (
        f"cannot reach Telegram: the connection could not be set up ({reason})"
    )
    assert client.conn is None


@pytest.mark.parametrize("interruption", [KeyboardInterrupt(), asyncio.CancelledError()])
def test_an_interruption_while_connecting_is_not_a_telegram_error(
    interruption: BaseException,
) -> None:
    with pytest.raises(type(interruption)):
        asyncio.run(session_module._connect(BrokenClient(interruption)))


def test_cli_session_against_garbage_is_one_line_exit_4(tmp_path: Path) -> None:
    """The whole command, the handshake answered with garbage by a middlebox."""
    code = (
        "import functools, sys\n"
        "from itam_tgstats.telegram import login as session\n"
        "from itam_tgstats.cli import main\n"
        "from tests.telegram.test_login import GarbageTransport\n"
        "session.login = functools.partial(session.login, protocol_factory=GarbageTransport)\n"
        "sys.argv = ['tgstats', 'session', '--phone', '+70000000001', '--write-env', 'x.env']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update({"TG_API_ID": "12345", "TG_API_HASH": FAKE_API_HASH, "PYTHONPATH": str(REPO)})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, timeout=60,
                            check=False)  # fmt: skip
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        f"{session_module.WARNING}\n"
        f"error: cannot reach Telegram: the connection could not be set up ({NOT_TELEGRAM})\n"
    )
    assert list(tmp_path.iterdir()) == []


# --- --write-env is checked before the login ----------------------------------------------


def refused_targets(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    link = tmp_path / "link.env"
    link.symlink_to(tmp_path / "real.env")
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return {
        "symlink": (link, f"{link} is a symbolic link; give the path of the file itself"),
        "fifo": (fifo, f"{fifo} is a FIFO, not a regular file"),
        "device": (Path(os.devnull), "/dev/null is a device file, not a regular file"),
        "directory": (tmp_path, f"{tmp_path} is a directory, not a .env file"),
        "read-only folder": (
            locked / ".env",
            f"{locked / '.env'}: this user cannot write in the folder {locked}",
        ),
    }


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device", "directory", "read-only folder"])
@pytest.mark.parametrize("telethon", [False, True])
def test_write_env_target_is_refused_before_the_login(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    telethon: bool,
) -> None:
    logins = no_login(monkeypatch)
    path, message = refused_targets(tmp_path)[kind]
    args = ["session", "--write-env", str(path), *(["--from-telethon"] if telethon else [])]
    result = CliRunner().invoke(app, args, input="not read\n")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: --write-env {message}\n"  # no prompt, no warning
    assert logins == []
    assert (tmp_path / "link.env").is_symlink() and not (tmp_path / "real.env").exists()


def test_write_env_fifo_through_the_installed_command_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    script = shutil.which("tgstats") or str(Path(sys.executable).with_name("tgstats"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    result = subprocess.run([script, "session", "--write-env", str(fifo)], capture_output=True,
                            text=True, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            timeout=30, check=False)  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: --write-env {fifo} is a FIFO, not a regular file\n"


def test_write_env_onto_someone_elses_file_is_one_line(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logins = no_login(monkeypatch)
    if os.geteuid() == 0:
        path = tmp_path / ".env"
        path.write_text("A=1\n")
        os.chown(path, 54321, 54321)
    else:
        path = Path("/etc/passwd")
    owner = path.stat().st_uid
    result = CliRunner().invoke(app, ["session", "--write-env", str(path)])
    assert (result.exit_code, result.stdout, logins) == (2, "", [])
    assert result.stderr == (
        f"error: --write-env {path} belongs to another user (uid {owner}); "
        "run as that user or choose another file\n"
    )


# --- --write-env failing after the login ------------------------------------------------


def test_write_env_failing_after_the_login_prints_the_session_string(
    env: dict[str, str], server: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up between the check and the write: the fresh string is not lost."""
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS_URL=redis://r\n")

    def disk_full(_path: Path, _data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(envfile, "_replace", disk_full)
    login_in_cli(server, monkeypatch)
    result = CliRunner().invoke(
        app, ["session", "--phone", PHONE, "--write-env", str(env_file)], input="12345\n"
    )
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Logged in. The session string follows on stdout.\n"
        f"error: --write-env {env_file}: cannot write it (No space left on device); "
        "the session string was printed on stdout instead\n"
    )
    [line] = result.stdout.splitlines()
    data = parse_session_string(line)
    assert server.logged_in[bytes.fromhex(data.auth_key_id)] == 424242
    assert env_file.read_text() == "REDIS_URL=redis://r\n"


def test_write_env_folder_made_read_only_during_the_login_prints_the_session_string(
    env: dict[str, str], server: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    env_file = folder / ".env"
    login_in_cli(server, monkeypatch, after=lambda: folder.chmod(0o555))
    result = CliRunner().invoke(
        app, ["session", "--phone", PHONE, "--write-env", str(env_file)], input="12345\n"
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: --write-env {env_file}: this user cannot write in the folder {folder}; "
        "the session string was printed on stdout instead"
    )
    assert parse_session_string(result.stdout.strip()).user_id == 424242
    assert list(folder.iterdir()) == []


def test_write_env_from_telethon_keeps_the_rest_of_the_file(
    env: dict[str, str], fake_tg: FakeTelegram, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"# mine\r\nexport TG_SESSION_STRING='old'\r\nREDIS_URL=redis://r")
    result = CliRunner().invoke(app, ["session", "--from-telethon", "--write-env", str(env_file)],
                                input=telethon_string(fake_tg, False) + "\n")  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, ""), result.stderr
    assert result.stderr == f"TG_SESSION_STRING written to {env_file} (mode 0600).\n"
    text = env_file.read_bytes()
    head, value, tail = text.partition(b"'")[0], text.split(b"'")[1], text.split(b"'")[2]
    assert (head, tail) == (b"# mine\r\nexport TG_SESSION_STRING=", b"\r\nREDIS_URL=redis://r")
    assert parse_session_string(value.decode()).auth_key == fake_tg.auth_key


# --- the command that replaces TG_SESSION_STRING never stops on what it holds ----------------

MALFORMED = "1BVtsOKABu-a-paste-gone-wrong"


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_session_logs_in_whatever_tg_session_string_holds(
    env: dict[str, str],
    server: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    login_in_cli(server, monkeypatch)
    if where == ".env":
        monkeypatch.delenv("TG_SESSION_STRING")
        (tmp_path / ".env").write_text(f"TG_SESSION_STRING={MALFORMED}\n")
    else:
        monkeypatch.setenv("TG_SESSION_STRING", MALFORMED)
    result = CliRunner().invoke(app, ["session", "--phone", PHONE], input="12345\n")
    assert result.exit_code == 0, result.stderr
    assert parse_session_string(result.stdout.strip()).user_id == 424242


def test_write_env_overwrites_a_malformed_session_string(
    env: dict[str, str], server: FakeTelegram, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    login_in_cli(server, monkeypatch)
    monkeypatch.delenv("TG_SESSION_STRING")
    env_file = tmp_path / ".env"
    env_file.write_text(f"# mine\nTG_SESSION_STRING={MALFORMED}\nTG_UPDATE_INTERVAL=900\n")
    result = CliRunner().invoke(
        app, ["session", "--phone", PHONE, "--write-env", ".env"], input="12345\n"
    )
    assert (result.exit_code, result.stdout) == (0, ""), result.stderr
    lines = env_file.read_text().splitlines()
    assert lines[0] == "# mine" and lines[2] == "TG_UPDATE_INTERVAL=900"
    value = lines[1].removeprefix("TG_SESSION_STRING=")
    assert parse_session_string(value).user_id == 424242
    assert MALFORMED not in env_file.read_text()


def test_from_telethon_runs_whatever_tg_session_string_holds(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_SESSION_STRING", MALFORMED)
    monkeypatch.setenv("TG_UPDATE_INTERVAL", "700")  # nor any other value session never reads
    result = CliRunner().invoke(
        app, ["session", "--from-telethon"], input=telethon_string(fake_tg, False) + "\n"
    )
    assert result.exit_code == 0, result.stderr
    assert parse_session_string(result.stdout.strip()).auth_key == fake_tg.auth_key


def test_session_still_names_a_bad_api_id(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What session reads is checked as before."""
    logins = no_login(monkeypatch)
    monkeypatch.setenv("TG_SESSION_STRING", MALFORMED)
    monkeypatch.setenv("TG_API_ID", "12345abc")
    result = CliRunner().invoke(app, ["session", "--phone", PHONE])
    assert result.exit_code == 2 and logins == []
    [line] = result.stderr.splitlines()
    assert line.startswith("error: TG_API_ID must be a positive integer") and "SESSION" not in line
