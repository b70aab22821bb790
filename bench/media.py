"""The TG_MEDIA_DOWNLOAD section: none/small/large on a channel of images, first and steady."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis
from pyrogram import raw

from bench.common import median_of, one_pass, table
from itam_tgstats.render.posts import group_posts
from itam_tgstats.store.keys import MEDIA_KEY_PREFIX, POSTS_KEY
from tests.channels import post, sized_photo, thumbed_video
from tests.faketg import FakeChannel, FakeTelegram

IMAGE_CHANNEL = "itam_images"
# Every other link card shows the site's logo: one file shared by many posts.
LOGO_PHOTO_ID = 69_999
# The calls that open a session on another data center: the auth key exchange (three
# unencrypted MTProto messages), then exporting the authorization at home and importing it
# there. help.getConfig and Ping are connection set-up, left out of every count (SETUP_CALLS).
DC_SETUP_CALLS = frozenset(
    {"ReqPqMulti", "ReqDHParams", "SetClientDHParams", "auth.ExportAuthorization",
     "auth.ImportAuthorization"}
)  # fmt: skip
MEDIA_MODES = ("none", "small", "large")
MEDIA_POSTS = (5, 100)


def image_channel(posts: int = 110, channel_id: int = 3_222_333_444) -> FakeChannel:
    """`posts` posts, every one with images, in a cycle of four (any 5 in a row hold each
    kind and a DC 4 image): a single photo, an album of 3 photos (caption on the first), a
    video with a thumbnail, a link card with a photo. Every fourth image lives on DC 4;
    every other link card shows the same logo (one download for all of them)."""
    c = channel_id
    messages: list[Any] = []
    images = 0

    def next_photo() -> raw.types.Photo:
        nonlocal images
        images += 1
        return sized_photo(60_000 + images, dc_id=4 if images % 4 == 0 else 2)

    msg_id = 5000
    for k in range(posts):
        kind = k % 4
        if kind == 0:
            media = raw.types.MessageMediaPhoto(photo=next_photo())
            messages.append(post(c, msg_id, f"photo {k}", media=media))
        elif kind == 1:
            for i in range(3):
                media = raw.types.MessageMediaPhoto(photo=next_photo())
                caption = f"album {k}" if i == 0 else ""
                messages.append(post(c, msg_id + i, caption, media=media, grouped_id=900_000 + k))
            msg_id += 2
        elif kind == 2:
            images += 1
            media = thumbed_video(61_000 + images, dc_id=4 if images % 4 == 0 else 2)
            messages.append(post(c, msg_id, f"video {k}", media=media))
        else:
            logo = k % 8 == 3
            photo = sized_photo(LOGO_PHOTO_ID) if logo else next_photo()
            url = f"https://misis.ru/news/{k}"
            card = raw.types.MessageMediaWebPage(
                webpage=raw.types.WebPage(
                    id=70_000 + k, url=url, display_url=url[8:], hash=0, type="article",
                    site_name="НИТУ МИСИС", title=f"News {k}", photo=photo,
                )
            )  # fmt: skip
            messages.append(post(c, msg_id, url, media=card))
        msg_id += 1
    return FakeChannel(id=c, title="ITAM images", username=IMAGE_CHANNEL, messages=messages)


def image_owners(messages: Sequence[Any]) -> dict[tuple[str, int], Any]:
    """Every Photo and Document with downloadable images in `messages`, by (kind, id)."""
    owners: dict[tuple[str, int], Any] = {}
    for message in messages:
        media = getattr(message, "media", None)
        photo = getattr(media, "photo", None) or getattr(
            getattr(media, "webpage", None), "photo", None
        )
        if isinstance(photo, raw.types.Photo):
            owners["photo", photo.id] = photo
        document = getattr(media, "document", None)
        if isinstance(document, raw.types.Document) and document.thumbs:
            owners["document", document.id] = document
    return owners


def serve_images(fake: FakeTelegram, channel: FakeChannel) -> None:
    """Serve every image size of the channel with as many bytes as the size states
    (tests.channels.register_files serves ~1 KB a file: too small to weigh memory)."""
    for (kind, _id), owner in image_owners(channel.messages).items():
        sizes = owner.sizes if kind == "photo" else owner.thumbs
        for size in sizes:
            if isinstance(size, raw.types.PhotoStrippedSize | raw.types.PhotoPathSize):
                continue
            length = max(size.sizes) if hasattr(size, "sizes") else size.size
            fake.add_file(
                kind, owner.id, size.type, bytes([owner.id % 251]) * length, dc_id=owner.dc_id,
                access_hash=owner.access_hash, file_reference=owner.file_reference,
            )  # fmt: skip


def expected_images(channel: FakeChannel, posts: int) -> tuple[int, set[int]]:
    """Distinct images of the newest `posts` posts (one download each), and their DCs."""
    kept = [m for group in group_posts(channel.messages)[:posts] for m in group]
    owners = image_owners(kept).values()
    return len(owners), {int(o.dc_id) for o in owners}


def stored_sizes(url: str) -> dict[str, float]:
    """Bytes of tg:channel:posts, and the tg:media:* keys Redis holds and their bytes."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{MEDIA_KEY_PREFIX}*", count=1000))
        return {
            "posts_bytes": client.strlen(POSTS_KEY),
            "images": len(keys),
            "image_bytes": sum(client.strlen(k) for k in keys),
        }
    finally:
        client.close()


def media_pass(
    fake: FakeTelegram, url: str, env: dict[str, str], *, traced: bool
) -> dict[str, float]:
    figures = one_pass(fake, url, env, traced=traced)
    calls = fake.api_calls
    figures.update(
        getfile=calls.count("upload.GetFile"),
        history=calls.count("messages.GetHistory"),
        dc_setup=sum(c in DC_SETUP_CALLS for c in calls),
        **stored_sizes(url),
    )
    return figures


def media_product(
    latency: float, repeat: int, url: str, channel: FakeChannel, *, posts: int, mode: str
) -> dict[str, Any]:
    """First (cold Redis) and steady pass: medians over `repeat` untraced runs; the memory
    peak and the call log from one more run under tracemalloc, after them."""
    env = {"TG_CHANNEL_USERNAME": channel.username or "", "TG_POSTS_COUNT": str(posts),
           "TG_MEDIA_DOWNLOAD": mode}  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {"first": [], "steady": []}
    peaks: dict[str, float] = {}
    log: dict[str, Counter[str]] = {}
    for i in range(repeat + 1):
        traced = i == repeat
        redis.Redis.from_url(url).flushdb()
        fake = FakeTelegram()
        fake.add_channel(channel)
        serve_images(fake, channel)
        fake.latency = latency
        for which in ("first", "steady"):
            figures = media_pass(fake, url, env, traced=traced)
            if traced:
                peaks[which] = figures["peak_mb"]
                log[which] = Counter(fake.api_calls)
            else:
                runs[which].append(figures)
    result: dict[str, Any] = {w: {**median_of(r), "peak_mb": peaks[w]} for w, r in runs.items()}
    result["log"] = log
    return result


def media_rows(
    results: dict[tuple[int, str], dict[str, Any]], expected: dict[int, tuple[int, set[int]]]
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("posts", "TG_MEDIA_DOWNLOAD", "pass", "calls", "getHistory", "upload.GetFile",
         "DC-4 set-up", "round trips", "pass", "of it downloads", "peak memory",
         "Redis trips", "tg:channel:posts", "tg:media:* in Redis")
    ]  # fmt: skip
    for (posts, mode), result in results.items():
        for which in ("first", "steady"):
            r = result[which]
            want = expected[posts][0] if mode != "none" and which == "first" else 0
            rows.append(
                (
                    str(posts),
                    mode,
                    which,
                    f"{r['calls']:.0f}",
                    f"{r['history']:.0f}",
                    f"{r['getfile']:.0f} (expect {want})",
                    f"{r['dc_setup']:.0f}",
                    f"{r['round_trips']:.0f}",
                    f"{r['pass_s'] * 1000:.0f} ms",
                    f"{r['download_s'] * 1000:.0f} ms",
                    f"{r['peak_mb']:.1f} MB",
                    f"{r['redis_trips']:.0f}",
                    f"{r['posts_bytes']:,.0f} B",
                    f"{r['images']:.0f} keys, {r['image_bytes'] / 1024:,.0f} KiB",
                )
            )
    return rows


def media_checks(
    results: dict[tuple[int, str], dict[str, Any]],
    expected: dict[int, tuple[int, set[int]]],
    channel: FakeChannel,
) -> list[str]:
    """What the design says each pass costs, against the calls it made (the traced run's).

    A steady pass is getFullChannel + one getHistory per page the kept posts span: a page
    holds at most 100 messages, so 100 posts with albums need two (3 calls, not 2).
    """
    problems = []
    groups = group_posts(channel.messages)
    for (posts, mode), result in results.items():
        images, dcs = expected[posts]
        span = sum(map(len, groups[:posts]))
        pages = max(1, -(-span // 100))
        for which in ("first", "steady"):
            want: Counter[str] = Counter(
                {"channels.GetFullChannel": 1, "messages.GetHistory": pages}
            )
            if which == "first":
                want["contacts.ResolveUsername"] = 1
                if mode != "none":
                    want["upload.GetFile"] = images
                    if dcs - {2}:
                        want.update({c: len(dcs - {2}) for c in DC_SETUP_CALLS})
            got = result["log"][which]
            if got != want:
                problems.append(
                    f"{posts} posts, {mode}, {which}: got {dict(got)}, want {dict(want)}"
                )
            if which == "steady" and sum(got.values()) != 1 + pages:
                problems.append(
                    f"{posts} posts, {mode}, steady: {sum(got.values())} calls, not {1 + pages} "
                    f"(the kept posts span {span} messages, {pages} getHistory page(s))"
                )
    return problems


def run_media(
    latency: float, repeat: int, url: str
) -> tuple[FakeChannel, dict[tuple[int, str], dict[str, Any]], dict[int, tuple[int, set[int]]]]:
    """The image channel, every (kept posts, mode)'s results, and each kept posts' expected
    images: what `print_media` takes."""
    images = image_channel()
    expected = {n: expected_images(images, n) for n in MEDIA_POSTS}
    media = {
        (n, mode): media_product(latency, repeat, url, images, posts=n, mode=mode)
        for n in MEDIA_POSTS
        for mode in MEDIA_MODES
    }
    return images, media, expected


def print_media(
    channel: FakeChannel,
    results: dict[tuple[int, str], dict[str, Any]],
    expected: dict[int, tuple[int, set[int]]],
) -> None:
    groups = group_posts(channel.messages)
    print()
    print(
        f"TG_MEDIA_DOWNLOAD: @{channel.username}, {len(groups)} posts in "
        f"{len(channel.messages)} messages, every post with images (photo, album of 3, video "
        "thumbnail, link card; every 4th image on DC 4, home is DC 2); "
        + "; ".join(
            f"{n} kept posts: {sum(map(len, groups[:n]))} messages, {count} distinct images "
            f"on DC {', '.join(map(str, sorted(dcs)))}"
            for n, (count, dcs) in expected.items()
        )
    )
    print(table(media_rows(results, expected)))
    print(
        "calls: API calls the stand-in Telegram answered (help.getConfig and Ping left out);"
        " DC-4 set-up: of them, the auth key exchange (3) and auth.export/importAuthorization"
        " that open the media session on DC 4; round trips: sequential on the critical path;"
        " pass: the whole pass in-process, connect included (median); of it downloads:"
        " TelegramSource.download; peak memory: tracemalloc peak of Python allocations made"
        " during the pass (one extra run; the in-process stand-in Telegram's own included);"
        " tg:channel:posts: the stored JSON's bytes; tg:media:*: images Redis holds after it."
    )
    print()
    print("Call log (the traced run), by call:")
    for (posts, mode), result in results.items():
        for which in ("first", "steady"):
            calls = ", ".join(f"{name} x{n}" for name, n in sorted(result["log"][which].items()))
            print(f"  {posts} posts, {mode}, {which}: {calls}")
    problems = media_checks(results, expected, channel)
    print()
    print("Against the design:", "as expected" if not problems else "")
    for problem in problems:
        print(f"  UNEXPECTED {problem}")
