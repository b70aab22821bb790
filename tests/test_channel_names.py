"""Channel names as people write them: capitals, and the shortest usernames Telegram allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from itam_tgstats.config import Settings, parse_channel, parse_channels
from itam_tgstats.errors import ConfigError
from itam_tgstats.store.keys import STATS_KEY
from tests.channels import small_channel
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass


@pytest.mark.parametrize("spelling", ["ITAtMisis", "@ITATMISIS", "https://t.me/ItAtMiSiS"])
def test_a_name_with_capitals_caches_its_peer_under_the_lower_cased_name(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, spelling: str
) -> None:
    """A change of case must not cost a fresh contacts.resolveUsername (the most
    flood-limited call): the cached peer is keyed by the name lower-cased."""
    assert run_pass(make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME=spelling), fake_tg)
    assert rdb.keys("tg:peer:*") == [f"tg:peer:{fake_tg.user_id}:itatmisis"]
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    # the same channel spelt another way: the cached peer, no resolve
    assert run_pass(make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME="itatmisis"), fake_tg)
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    assert json.loads(rdb.get(STATS_KEY))["username"] == "itatmisis"  # as Telegram spells it


@pytest.mark.parametrize("name", ["abcd", "a1_b", "Zed4"])
def test_a_four_character_username_is_a_channel_name(
    name: str, fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """Collectible usernames have 4 characters: configured, read, cached, stored."""
    assert parse_channel(name) == name
    assert parse_channel(f"@{name}") == name
    assert parse_channel(f"https://t.me/{name}") == name
    fake_tg.add_channel(small_channel(7, name))
    assert run_pass(make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME=name), fake_tg)
    assert rdb.exists(f"tg:channel:{name.lower()}:stats") == 1
    assert rdb.keys("tg:peer:*") == [f"tg:peer:{fake_tg.user_id}:{name.lower()}"]


@pytest.mark.parametrize("name", ["abc", "a1_", "@xyz", "https://t.me/ab1", "ab", "a"])
def test_a_name_of_three_characters_or_fewer_is_refused_in_one_line(name: str) -> None:
    assert parse_channel(name) is None
    names, problem = parse_channels(name)
    assert names == () and problem is not None
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"TG_CHANNEL_USERNAME": name}, Path("/dev/null"), need_telegram=False)
    assert raised.value.message.startswith("TG_CHANNEL_USERNAME must be a public channel username")
    assert "\n" not in raised.value.message


def test_the_longest_username_is_32_characters() -> None:
    assert parse_channel("a" * 32) == "a" * 32
    assert parse_channel("a" * 33) is None
