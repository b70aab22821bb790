"""`tgstats show`, every form, validates only what it reads: REDIS_URL, TG_CHANNEL_USERNAME,
TG_UPDATE_INTERVAL and TG_POST_HISTORY_DAYS. A malformed API id, hash or session string
(which it never uses) does not stop it, the health check included."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats.cli import SHOW_READS, app
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass

FORMS = [["show"], ["show", "--json"], ["show", "--check"]]
# What `show` never uses, each malformed as a paste gone wrong would leave it.
UNREAD = {
    "TG_API_ID": "12345abc",
    "TG_API_HASH": "not-a-hash",
    "TG_SESSION_STRING": "1BVtsOKABu-a-paste-gone-wrong",
    "TG_POSTS_COUNT": "lots",
    "TG_TIMEOUT": "0",
    "TG_FLOOD_WAIT_MAX": "-1",
    "TG_HISTORY_DAYS": "forever",
    "TG_MEDIA_DOWNLOAD": "all",
    "LOG_LEVEL": "loud",
}
READ = {
    "REDIS_URL": "http://localhost",
    "TG_CHANNEL_USERNAME": "@",
    "TG_UPDATE_INTERVAL": "0",
    "TG_POST_HISTORY_DAYS": "31",
}


@pytest.fixture
def fresh(env: dict[str, str], fake_tg: FakeTelegram, redis_url: str) -> None:
    """A successful pass just now: `show --check` is fresh."""
    assert run_pass(make_settings(fake_tg, redis_url), fake_tg)


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize("form", FORMS, ids=" ".join)
@pytest.mark.parametrize("where", ["environment", ".env"])
def test_values_show_does_not_read_never_stop_it(
    form: list[str], where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if where == ".env":
        for name in UNREAD:
            monkeypatch.delenv(name, raising=False)
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in UNREAD.items()))
    else:
        for name, value in UNREAD.items():
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, form, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "itatmisis" in result.stdout or result.stdout.startswith("ok")


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize("form", FORMS, ids=" ".join)
@pytest.mark.parametrize("name", sorted(READ))
def test_a_bad_value_show_reads_is_named_in_one_line(
    form: list[str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, READ[name])
    result = CliRunner().invoke(app, form)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {name} ")


def test_show_reads_exactly_the_four_the_contract_names() -> None:
    assert sorted(SHOW_READS) == sorted(READ)


def test_the_health_check_still_reads_what_redis_holds(
    env: dict[str, str], rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing stored: stale (exit 1), whatever else is malformed."""
    for name, value in UNREAD.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["show", "--check"])
    assert result.exit_code == 1
    assert "TG_" not in result.stdout + result.stderr
