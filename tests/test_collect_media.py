"""TG_MEDIA_DOWNLOAD in whole passes: sizes chosen, bytes stored, never fetched twice, pruned."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from itam_tgstats.store.keys import POSTS_KEY
from tests.channels import media_channel, post, register_files
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass, status

SMALL = {
    2004: [],
    2003: ["tg:media:61003:m"],
    2001: ["tg:media:60001:m", "tg:media:60002:m"],
    2000: ["tg:media:60000:m"],
}


@pytest.fixture
def media_fake() -> tuple[FakeTelegram, FakeChannel, dict[str, bytes]]:
    fake = FakeTelegram()
    channel = fake.add_channel(media_channel())
    return fake, channel, register_files(fake, channel)


def stored_posts(rdb: redis.Redis) -> list[dict[str, Any]]:
    return list(json.loads(rdb.get(POSTS_KEY)))


def images(posts: list[dict[str, Any]]) -> dict[int, list[str | None]]:
    return {p["id"]: [item["image"] for item in p["media"]] for p in posts}


def media_keys(rdb: redis.Redis) -> set[str]:
    return set(rdb.keys("tg:media:*"))


def settings(fake: FakeTelegram, redis_url: str, mode: str, **env: str) -> Any:
    return make_settings(
        fake, redis_url, TG_CHANNEL_USERNAME="itam_media", TG_MEDIA_DOWNLOAD=mode, **env
    )


def test_small_stores_the_largest_size_up_to_320px_once(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, served = media_fake
    assert run_pass(settings(fake, redis_url, "small"), fake)
    posts = stored_posts(rdb)
    assert images(posts) == SMALL
    assert posts[0]["link_preview"]["image"] == "tg:media:60004:m"
    expected = {"tg:media:60000:m", "tg:media:60001:m", "tg:media:60002:m", "tg:media:61003:m",
                "tg:media:60004:m"}  # fmt: skip
    assert media_keys(rdb) == expected
    raw_client = redis.Redis.from_url(redis_url)
    for key in expected:
        assert raw_client.get(key) == served[key]
    raw_client.close()
    # One upload.getFile per image; two of them live on DC 4, reached once.
    assert fake.api_calls.count("upload.GetFile") == 5
    assert fake.calls_on(4).count("upload.GetFile") == 2
    assert fake.calls_on(4).count("auth.ImportAuthorization") == 1
    assert fake.calls_on(2).count("auth.ExportAuthorization") == 1
    assert fake.open_connections == 0

    # A steady pass: nothing new to download, two calls, same images.
    fake.calls.clear()
    fake.dc_calls.clear()
    assert run_pass(settings(fake, redis_url, "small"), fake)
    assert sorted(fake.api_calls) == ["channels.GetFullChannel", "messages.GetHistory"]
    assert images(stored_posts(rdb)) == SMALL
    assert media_keys(rdb) == expected


def test_large_takes_up_to_1280px(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, _served = media_fake
    run_pass(settings(fake, redis_url, "large"), fake)
    posts = stored_posts(rdb)
    assert images(posts)[2000] == ["tg:media:60000:y"]
    assert images(posts)[2003] == ["tg:media:61003:m"]  # its only thumbnail
    assert posts[0]["link_preview"]["image"] == "tg:media:60004:y"


def test_images_of_posts_that_rolled_out_are_deleted_with_the_new_posts(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, channel, _served = media_fake
    run_pass(settings(fake, redis_url, "small", TG_POSTS_COUNT="4"), fake)
    rdb.set("tg:media:unrelated:x", b"kept: not ours to judge")  # never referenced by us
    channel.messages.append(post(channel.id, 2005, "news without images"))
    channel.messages.append(post(channel.id, 2006, "more news"))
    fake.calls.clear()
    run_pass(settings(fake, redis_url, "small", TG_POSTS_COUNT="4"), fake)
    assert [p["id"] for p in stored_posts(rdb)] == [2006, 2005, 2004, 2003]
    assert media_keys(rdb) == {"tg:media:61003:m", "tg:media:60004:m", "tg:media:unrelated:x"}
    assert "upload.GetFile" not in fake.api_calls


def test_switching_to_none_drops_every_image(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, _served = media_fake
    run_pass(settings(fake, redis_url, "small"), fake)
    fake.calls.clear()
    run_pass(settings(fake, redis_url, "none"), fake)
    assert "upload.GetFile" not in fake.api_calls
    assert all(i is None for imgs in images(stored_posts(rdb)).values() for i in imgs)
    assert media_keys(rdb) == set()


def test_a_failed_download_leaves_image_null_and_is_retried_next_pass(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, _served = media_fake
    fake.files["photo", 60_000, "m"].expired = True  # FILE_REFERENCE_EXPIRED
    assert run_pass(settings(fake, redis_url, "small"), fake)
    assert images(stored_posts(rdb))[2000] == [None]
    assert images(stored_posts(rdb))[2001] == SMALL[2001]
    assert "tg:media:60000:m" not in media_keys(rdb)
    fake.files["photo", 60_000, "m"].expired = False
    fake.calls.clear()
    assert run_pass(settings(fake, redis_url, "small"), fake)
    assert fake.api_calls.count("upload.GetFile") == 1
    assert images(stored_posts(rdb)) == SMALL


def test_the_render_fields_of_a_video_item(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, _served = media_fake
    run_pass(settings(fake, redis_url, "small"), fake)
    video = next(p for p in stored_posts(rdb) if p["id"] == 2003)
    [item] = video["media"]
    thumbnail = item.pop("thumbnail")
    assert thumbnail.startswith("data:image/jpeg;base64,/9j/")
    assert item == {
        "type": "video",
        "width": 1920,
        "height": 1080,
        "duration": 30.0,
        "file_name": "demo.mp4",
        "mime_type": "video/mp4",
        "size": 5_000_000,
        "image": "tg:media:61003:m",
    }


def test_an_image_deleted_behind_our_back_is_downloaded_again(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    """Posts name an image only while Redis holds it: stored means checked, not assumed."""
    fake, _channel, _served = media_fake
    run_pass(settings(fake, redis_url, "small"), fake)
    rdb.delete("tg:media:60000:m")  # evicted, or deleted by hand
    fake.calls.clear()
    run_pass(settings(fake, redis_url, "small"), fake)
    assert fake.api_calls.count("upload.GetFile") == 1
    assert rdb.exists("tg:media:60000:m") == 1
    assert images(stored_posts(rdb)) == SMALL


def test_a_channel_configured_again_gets_its_images_back(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    fake, _channel, _served = media_fake
    fake.add_channel(FakeChannel(id=9, title="other", username="other_channel"))
    run_pass(settings(fake, redis_url, "small"), fake)
    # Another channel only: the first one's images go (its keys stay, as they were) ...
    run_pass(
        make_settings(
            fake, redis_url, TG_CHANNEL_USERNAME="other_channel", TG_MEDIA_DOWNLOAD="small"
        ),
        fake,
    )
    assert media_keys(rdb) == set()
    # ... and come back, downloaded again, when it is configured again.
    fake.calls.clear()
    run_pass(settings(fake, redis_url, "small"), fake)
    assert fake.api_calls.count("upload.GetFile") == 5
    assert images(stored_posts(rdb)) == SMALL and len(media_keys(rdb)) == 5


def test_slow_downloads_never_fail_the_pass(
    media_fake: tuple[FakeTelegram, FakeChannel, dict[str, bytes]],
    redis_url: str,
    rdb: redis.Redis,
) -> None:
    """With TG_TIMEOUT nearly used up by the reads, images wait for the next pass."""
    fake, _channel, _served = media_fake
    fake.latency = 0.6  # resolve, then full+history: 1.2 s of the 6 s; 5 s kept for the end
    assert run_pass(settings(fake, redis_url, "small", TG_TIMEOUT="6"), fake) is True
    assert "upload.GetFile" not in fake.api_calls
    assert all(i is None for imgs in images(stored_posts(rdb)).values() for i in imgs)
    assert status(rdb)["ok"] is True
