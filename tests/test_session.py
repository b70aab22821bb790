"""`tgstats session`: the whole login against the stand-in Telegram (real handshake, real SRP)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import struct
import sys
from pathlib import Path

import pexpect
import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.errors import SessionError, TelegramError
from itam_tgstats.session import Credentials, login, write_env
from itam_tgstats.sessions import parse_session_string
from tests.conftest import FAKE_API_HASH
from tests.fakeauth import FakeAccount
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass

REPO = Path(__file__).resolve().parent.parent
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


def telethon_string(fake: FakeTelegram, ipv6: bool) -> str:
    if ipv6:
        packed = struct.pack(">B16sH256s", 4, bytes.fromhex("20010b28f23f" + "00" * 9 + "0a"), 443,
                             fake.auth_key)  # fmt: skip
    else:
        packed = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, fake.auth_key)
    return "1" + base64.urlsafe_b64encode(packed).decode()


@pytest.mark.parametrize("ipv6", [False, True])
def test_from_telethon_converts_without_login(
    env: dict[str, str], fake_tg: FakeTelegram, ipv6: bool
) -> None:
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
    assert result.stdout.count("\n") == 1 and fake_tg.calls == []


def test_from_telethon_rejects_garbage_without_echoing_it(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["session", "--from-telethon"], input="s3cr3t-garbage\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: stdin does not hold a Telethon session string (")
    assert "s3cr3t" not in result.stderr and result.stdout == ""


def test_write_env_updates_only_the_session_line_with_mode_0600(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TG_API_ID=12345\nTG_SESSION_STRING=old\n# keep me\nREDIS_URL=redis://r\n")
    env_file.chmod(0o644)
    write_env(env_file, "NEWSESSION")
    assert env_file.read_text() == (
        "TG_API_ID=12345\nTG_SESSION_STRING=NEWSESSION\n# keep me\nREDIS_URL=redis://r\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    fresh = tmp_path / "new.env"
    write_env(fresh, "S")
    assert fresh.read_text() == "TG_SESSION_STRING=S\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


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


def test_session_needs_no_configuration_to_start(tmp_path: Path, rdb: redis.Redis) -> None:
    """Asked for the API id when it is not set; a bad one is named and nothing happens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env["PYTHONPATH"] = str(REPO)
    child = pexpect.spawn(sys.executable, ["-m", "tests.fake_tgstats", "session"],
                          cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60)  # fmt: skip
    child.expect("TG_API_ID")
    child.sendline("not-a-number")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "error: TG_API_ID must be a positive integer, got 'not-a-number'" in (child.before or "")
    assert rdb.dbsize() == 0
