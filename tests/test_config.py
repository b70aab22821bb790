"""Settings: every variable of the contract's table, defaults, .env, and one-line errors."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import pytest

from itam_tgstats.config import Settings, describe_redis_url, load_environment, parse_channel
from itam_tgstats.errors import ConfigError
from itam_tgstats.telegram.session_string import parse_session_string
from tests.conftest import FAKE_API_HASH
from tests.faketg import FakeTelegram

NO_FILE = Path(os.devnull)


def base_env(**extra: str) -> dict[str, str]:
    env = {
        "TG_API_ID": "12345",
        "TG_API_HASH": FAKE_API_HASH,
        "TG_SESSION_STRING": FakeTelegram().session_string(),
    }
    env.update(extra)
    return env


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env(base_env(), NO_FILE)
    assert (s.channel, s.redis_url, s.update_interval, s.posts_count, s.log_level) == (
        "itatmisis",
        "redis://localhost:6379/0",
        900,
        5,
        "INFO",
    )
    assert (s.flood_wait_max, s.timeout, s.history_days) == (60, 120, 90)
    assert s.admin_stats_hours == 24
    assert Settings.from_env(base_env(TG_ADMIN_STATS_HOURS="0"), NO_FILE).admin_stats_hours == 0
    assert Settings.from_env(base_env(TG_ADMIN_STATS_HOURS="168"), NO_FILE).admin_stats_hours == 168


@pytest.mark.parametrize(
    "text",
    [
        "itatmisis",
        "@itatmisis",
        "https://t.me/itatmisis",
        "t.me/itatmisis/",
        "http://telegram.me/itatmisis",
        " @itatmisis ",
    ],
)
def test_channel_spellings(text: str) -> None:
    assert parse_channel(text) == "itatmisis"


@pytest.mark.parametrize(
    "text",
    [
        "https://t.me/+AbCdEf",
        "https://t.me/c/123/4",
        "ab",
        "1channel",
        "it atmisis",
        "https://example.com/itatmisis",
        "name_",
        "@",
    ],
)
def test_channel_that_cannot_be_a_username_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="^TG_CHANNEL_USERNAME must be a public channel"):
        Settings.from_env(base_env(TG_CHANNEL_USERNAME=text), NO_FILE)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TG_API_ID", "abc", "TG_API_ID must be a positive integer up to 2147483647, got 'abc'"),
        # digits Python's int() rejects (superscript) or accepts but no one means (Arabic-Indic)
        ("TG_API_ID", "²", "TG_API_ID must be a positive integer up to 2147483647, got '²'"),
        ("TG_API_ID", "١٢٣", "TG_API_ID must be a positive integer up to 2147483647, got '١٢٣'"),
        (
            "TG_API_ID",
            "4294967296",
            "TG_API_ID must be a positive integer up to 2147483647, got '4294967296'",
        ),
        ("TG_POSTS_COUNT", "101", "TG_POSTS_COUNT must be an integer from 1 to 100, got '101'"),
        ("TG_POSTS_COUNT", "0", "TG_POSTS_COUNT must be an integer from 1 to 100, got '0'"),
        ("TG_POSTS_COUNT", "1_0", "TG_POSTS_COUNT must be an integer from 1 to 100, got '1_0'"),
        (
            "TG_UPDATE_INTERVAL",
            "soon",
            "TG_UPDATE_INTERVAL must be an integer from 1 to 604800, got 'soon'",
        ),
        ("TG_TIMEOUT", "-5", "TG_TIMEOUT must be an integer from 1 to 86400, got '-5'"),
        ("TG_TIMEOUT", "1e17", "TG_TIMEOUT must be an integer from 1 to 86400, got '1e17'"),
        (
            "TG_TIMEOUT",
            "100000000000000000",
            "TG_TIMEOUT must be an integer from 1 to 86400, got '100000000000000000'",
        ),
        (
            "TG_FLOOD_WAIT_MAX",
            "1.5",
            "TG_FLOOD_WAIT_MAX must be an integer from 0 to 86400, got '1.5'",
        ),
        ("TG_HISTORY_DAYS", "0", "TG_HISTORY_DAYS must be an integer from 1 to 36500, got '0'"),
        (
            "TG_ADMIN_STATS_HOURS",
            "169",
            "TG_ADMIN_STATS_HOURS must be an integer from 0 to 168, got '169'",
        ),
        (
            "TG_ADMIN_STATS_HOURS",
            "-1",
            "TG_ADMIN_STATS_HOURS must be an integer from 0 to 168, got '-1'",
        ),
        (
            "TG_ADMIN_STATS_HOURS",
            "1.5",
            "TG_ADMIN_STATS_HOURS must be an integer from 0 to 168, got '1.5'",
        ),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
        (
            "TG_MEDIA_DOWNLOAD",
            "medium",
            "TG_MEDIA_DOWNLOAD must be one of none, small, large, got 'medium'",
        ),
        (
            "REDIS_URL",
            "http://u:hunter2@h/",
            "REDIS_URL must be a redis://, rediss:// or unix:// URL",
        ),
        (
            "REDIS_URL",
            "redis://h/0?socket_timeout=abc",
            "REDIS_URL is not accepted by redis-py: "
            "Invalid value for 'socket_timeout' in connection URL.",
        ),
        (
            "REDIS_URL",
            "redis://h/0?foo=bar",
            "REDIS_URL has an option redis-py does not know (not shown: it may be a piece of "
            "a password; percent-encode & = # in a password)",
        ),
        (
            "REDIS_URL",
            "redis://h:99999/0",
            "REDIS_URL is not a valid URL (check the host and port)",
        ),
    ],
)
def test_bad_value_is_named_in_one_line(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(**{name: value}), NO_FILE)
    assert str(caught.value) == message


def test_all_problems_at_once_and_secrets_not_echoed() -> None:
    env = {
        "TG_API_HASH": "not-a-secret-hash-but-private",
        "TG_SESSION_STRING": "garbage!!secret",
        "TG_POSTS_COUNT": "x",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, NO_FILE, need_session=True)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith("TG_API_ID is not set")
    assert "TG_API_HASH must be 32 hexadecimal characters (got 29)" in text
    assert "TG_SESSION_STRING is not a Pyrogram or Telethon session string" in text
    assert "TG_POSTS_COUNT" in text
    assert "not-a-secret-hash" not in text and "garbage" not in text


def test_missing_session_is_required_only_when_asked() -> None:
    env = base_env()
    del env["TG_SESSION_STRING"]
    assert Settings.from_env(env, NO_FILE).session is None
    with pytest.raises(ConfigError, match="^TG_SESSION_STRING is not set: mint one with"):
        Settings.from_env(env, NO_FILE, need_session=True)


def test_env_file_is_read_and_real_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"TG_API_ID=999\nTG_API_HASH={FAKE_API_HASH}\nTG_POSTS_COUNT=7\nTG_CHANNEL_USERNAME=@from_file\n"
    )
    s = Settings.from_env({"TG_API_ID": "12345"}, env_file)
    assert (s.api_id, s.posts_count, s.channel) == (12345, 7, "from_file")


def test_repr_hides_secrets() -> None:
    fake = FakeTelegram()
    s = Settings.from_env(base_env(REDIS_URL="redis://:pw@h:6379/0"), NO_FILE)
    text = repr(s)
    assert FAKE_API_HASH not in text and fake.session_string() not in text and "pw" not in text


def test_telethon_strings_convert_to_pyrogram() -> None:
    fake = FakeTelegram()
    ipv4 = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, fake.auth_key)
    ipv6 = struct.pack(">B16sH256s", 4, b"\x20\x01" + b"\x00" * 14, 443, fake.auth_key)
    for packed, dc in ((ipv4, 2), (ipv6, 4)):
        telethon = "1" + base64.urlsafe_b64encode(packed).decode()
        data = parse_session_string(telethon)
        assert (data.dc_id, data.auth_key, data.source) == (dc, fake.auth_key, "telethon")
        again = parse_session_string(data.to_pyrogram(12345))
        assert (again.dc_id, again.auth_key, again.api_id) == (dc, fake.auth_key, 12345)


SESSION_LIKE = FakeTelegram().session_string()


@pytest.mark.parametrize(
    "name", ["TG_CHANNEL_USERNAME", "TG_POSTS_COUNT", "LOG_LEVEL", "TG_API_ID", "TG_TIMEOUT"]
)
def test_a_secret_pasted_into_the_wrong_variable_is_not_echoed(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(**{name: SESSION_LIKE}), NO_FILE)
    text = str(caught.value)
    assert text.startswith(f"{name} ")
    if name == "TG_CHANNEL_USERNAME":  # said for what it is
        assert "looks like an API hash or session string, not a channel name" in text
    else:
        assert f"a value of {len(SESSION_LIKE)} characters (not shown" in text
    assert SESSION_LIKE[:12] not in text


def test_an_api_hash_pasted_into_api_id_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(TG_API_ID=FAKE_API_HASH), NO_FILE)
    assert FAKE_API_HASH not in str(caught.value)
    assert "a value of 32 characters" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://:s3cr%40t@cache:6380/2", "cache:6380 db 2"),
        ("redis://user:p@ss@cache/3", "cache:6379 db 3"),
        ("unix:///run/redis.sock?db=4&password=s3cret", "unix socket /run/redis.sock db 4"),
        ("rediss://default:topsecret@cache.example:6390", "cache.example:6390 db 0"),
    ],
)
def test_redis_urls_are_described_without_their_password(url: str, where: str) -> None:
    assert describe_redis_url(url) == where


SECRET = "S3cr3tPw"
# Passwords typed into a Redis URL as they are, without percent-encoding: the / ends the
# host, the ? starts the query, the & starts another option.
HOSTILE_REDIS_URLS = [
    f"redis://u:777/{SECRET}@h:1/0", f"redis://u:pa/{SECRET}@h/0", f"redis://h/{SECRET}",
    f"redis://h/0/{SECRET}", f"redis://u:pa?{SECRET}@h/0", f"redis://u:pa#{SECRET}@h/0",
    f"redis://h/0?password=ab&{SECRET}=x", f"redis://h/0?password=ab&db={SECRET}",
    f"redis://h/0?socket_timeout={SECRET}", f"redis://h/0?password={SECRET}&socket_timeout=x",
    f"unix:///tmp/r.sock?db={SECRET}", f"unix://u:{SECRET}@/tmp/r.sock?db=0",
    f"rediss://u:p@{SECRET}@h:6390/0", f"redis://{SECRET}:{SECRET}@h/1?password={SECRET}",
    f"redis://h:6379/0?{SECRET}", f"redis://u:{SECRET}@h/0?client_name=x&{SECRET}",
    f"redis://:{SECRET}@h:6379/%2F{SECRET}", f"redis://h/{SECRET}?db=1",
]  # fmt: skip


@pytest.mark.parametrize("url", HOSTILE_REDIS_URLS)
def test_no_part_of_a_redis_url_but_where_it_points_is_printed(url: str) -> None:
    """Bug: `redis://u:777/Secret@host:1/0` was described as `u:777 db Secret@host:1/0`, and
    a password with `&` named a piece of itself as an unknown option."""
    assert SECRET not in describe_redis_url(url)
    try:
        Settings.from_env(base_env(REDIS_URL=url), NO_FILE)
    except ConfigError as e:
        assert SECRET not in str(e) and SECRET not in repr(e)


@pytest.mark.parametrize(
    "url", [f"redis://u:777/{SECRET}@h:1/0", f"redis://h/{SECRET}", "redis://h/0/1", "redis://h/x"]
)
def test_a_redis_path_that_is_not_a_database_number_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(REDIS_URL=url), NO_FILE)
    assert str(caught.value) == (
        "REDIS_URL has a path that is not a database number (redis://host:port/<db>; "
        "percent-encode / ? # @ in a password)"
    )


@pytest.mark.parametrize(
    ("url", "db"), [("redis://h", 0), ("redis://h/", 0), ("redis://h/7", 7), ("redis://h/%37", 7)]
)
def test_a_redis_path_that_is_a_database_number_is_taken(url: str, db: int) -> None:
    assert Settings.from_env(base_env(REDIS_URL=url), NO_FILE).redis_url == url
    assert describe_redis_url(url) == f"h:6379 db {db}"


def test_an_unknown_redis_option_is_not_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(REDIS_URL="redis://h/0?password=ab&cd=ef"), NO_FILE)
    assert "cd" not in str(caught.value).replace("percent-encode", "")
    assert str(caught.value).startswith("REDIS_URL has an option redis-py does not know (")


def pyrogram_session() -> str:
    return FakeTelegram().session_string()


def telethon_session() -> str:
    packed = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, b"k" * 256)
    return "1" + base64.urlsafe_b64encode(packed).decode()


@pytest.mark.parametrize(
    "secret",
    [
        FAKE_API_HASH,
        "abcdef0123456789abcdef0123456789",  # a valid-looking username: still refused
        "ABCDEF0123456789ABCDEF0123456789",
        "fedcba98765432100123456789abcdef",
        pyrogram_session(),
        telethon_session(),
    ],
)
@pytest.mark.parametrize("form", ["{}", "@{}", "https://t.me/{}", "itatmisis, {}"])
def test_a_secret_as_a_channel_name_is_refused_without_echo(secret: str, form: str) -> None:
    """Bug: an API hash starting with a letter a-f passed for a username: it was sent to
    Telegram, printed, and written into key names and `tg:status`."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(base_env(TG_CHANNEL_USERNAME=form.format(secret)), NO_FILE)
    where = "item 2 " if form.startswith("itatmisis") else ""
    assert str(caught.value) == (
        f"TG_CHANNEL_USERNAME {where}looks like an API hash or session string, not a channel name"
    )
    for piece in (secret, secret[:8], secret[-8:]):
        assert piece not in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "abcdef0123456789abcdef012345678",  # 31 hexadecimal characters
        "itam_events_and_jobs_of_misis_32",  # 32 characters, not all hexadecimal
        "deadbeef",
        "cafe_babe",
    ],
)
def test_names_that_are_not_secrets_are_taken(name: str) -> None:
    assert Settings.from_env(base_env(TG_CHANNEL_USERNAME=name), NO_FILE).channels == (name,)


def test_env_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes("TG_CHANNEL_USERNAME=канал\n".encode("cp1251"))
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({}, env_file, need_telegram=False)
    assert str(caught.value) == f"{env_file} is not UTF-8 text: save it as UTF-8"


def test_env_file_that_cannot_be_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("X=1\n")
    if os.geteuid() != 0:
        env_file.chmod(0)
    else:  # root reads any file: make the read itself fail as it does for others

        def denied(*_args: object, **_kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("itam_tgstats.config.dotenv_values", denied)
    with pytest.raises(ConfigError) as caught:
        load_environment({}, env_file)
    assert str(caught.value) == f"cannot read {env_file}: Permission denied"


@pytest.mark.parametrize(
    ("value", "side"), [("none", None), ("small", 320), ("LARGE", 1280), ("", None)]
)
def test_media_download_sizes(value: str, side: int | None) -> None:
    settings = Settings.from_env(base_env(TG_MEDIA_DOWNLOAD=value), NO_FILE)
    assert settings.media_max_side == side
