"""Benchmark: Telegram calls, round trips, pass time, Redis round trips, process start-up.

    python bench/run.py [--latency 0.05] [--repeat 5]        (or: make bench)

Runs against the stand-in Telegram (tests/faketg.py) with the given latency per call and a
redis-server of its own; every figure is the median of `--repeat` runs. Needs the test
set-up (`make setup`, redis-server installed). Not part of the test suite.

The second table is TG_MEDIA_DOWNLOAD=none/small/large for 5 and 100 kept posts of a channel
whose every post carries images (`image_channel`), first pass (cold Redis: every image is
downloaded) and steady pass (nothing new); the call log of each pass follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from pyrogram import raw  # noqa: E402
from redis.asyncio.connection import AbstractConnection  # noqa: E402

from bench.baseline import baseline_pass, teach_high_level_calls  # noqa: E402
from itam_tgstats.collect import collect_once  # noqa: E402
from itam_tgstats.models import MediaFile  # noqa: E402
from itam_tgstats.store import MEDIA_KEY_PREFIX, POSTS_KEY, Store  # noqa: E402
from itam_tgstats.telegram import TelegramSource, group_posts  # noqa: E402
from tests.channels import post, rich_channel, sized_photo, thumbed_video  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402
from tests.faketg import FakeChannel, FakeTelegram  # noqa: E402
from tests.helpers import make_settings  # noqa: E402

REDIS_TRIPS = 0
_send = AbstractConnection.send_packed_command


async def _counting_send(self: Any, command: Any, check_health: bool = True) -> None:
    global REDIS_TRIPS  # noqa: PLW0603 - a benchmark's counter
    REDIS_TRIPS += 1
    await _send(self, command, check_health)


AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]


class TimedSource:
    """The real source, timing `fetch` (the pass after the client is connected) and
    `download` (the images of the pass; 0 when nothing is downloaded)."""

    last_fetch = 0.0
    last_download = 0.0

    def __init__(self, settings: Any, fake: FakeTelegram) -> None:
        self.inner = TelegramSource(settings, protocol_factory=fake.protocol_factory)

    async def __aenter__(self) -> TimedSource:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)

    async def fetch(self, *args: Any) -> Any:
        started = time.perf_counter()
        result = await self.inner.fetch(*args)
        TimedSource.last_fetch = time.perf_counter() - started
        return result

    async def download(self, files: Sequence[MediaFile]) -> dict[str, bytes]:
        started = time.perf_counter()
        result = await self.inner.download(files)
        TimedSource.last_download = time.perf_counter() - started
        return result


def one_pass(
    fake: FakeTelegram, url: str, env: dict[str, str], *, traced: bool = False
) -> dict[str, float]:
    """One product pass; its figures. `traced`: also the tracemalloc peak (slows the pass)."""
    global REDIS_TRIPS  # noqa: PLW0603
    settings = make_settings(fake, url, **env)
    fake.calls.clear()
    fake.dc_calls.clear()
    fake.timeline.clear()
    fake.dc_timeline.clear()
    REDIS_TRIPS = 0
    TimedSource.last_download = 0.0

    async def main() -> None:
        store = Store(url)
        try:
            await collect_once(settings, store, lambda s: TimedSource(s, fake))
        finally:
            await store.aclose()

    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        asyncio.run(main())
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
    return {
        "calls": len(fake.api_calls),
        "round_trips": fake.round_trips(),
        "fetch_s": TimedSource.last_fetch,
        "download_s": TimedSource.last_download,
        "pass_s": elapsed,
        "redis_trips": REDIS_TRIPS,
        "peak_mb": peak / 2**20,
    }


def product(
    latency: float, repeat: int, url: str, channel: FakeChannel, **env: str
) -> dict[str, Any]:
    """First pass (resolving) and steady state, medians over `repeat`."""
    firsts, steadies = [], []
    for _ in range(repeat):
        redis.Redis.from_url(url).flushdb()
        fake = FakeTelegram()
        fake.add_channel(channel)
        fake.latency = latency
        firsts.append(one_pass(fake, url, env))
        steadies.append(one_pass(fake, url, env))
    return {"first": median_of(firsts), "steady": median_of(steadies)}


def baseline(latency: float, repeat: int, posts: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        fake = FakeTelegram()
        fake.add_channel(rich_channel())
        teach_high_level_calls(fake)
        fake.latency = latency
        started = time.perf_counter()
        asyncio.run(baseline_pass(fake, fake.session_string(), "itatmisis", posts))
        runs.append(
            {
                "calls": len(fake.api_calls),
                "round_trips": fake.round_trips(),
                "pass_s": time.perf_counter() - started,
            }
        )
    return median_of(runs)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# A small launcher times the command and reads its own child's rusage: the bench process is
# large, and a child forked (or vforked) from it would count the bench's memory as its own.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def process(
    command: list[str], env: dict[str, str], cwd: Path, repeat: int
) -> tuple[float, float, int]:
    """Median wall time (s), median peak RSS (MB) and the exit code of a whole process."""
    times, peaks, code = [], [], 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command],
            env=env, cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        peaks.append(int(out[1]) / 1024)
        code = int(out[2])
    return statistics.median(times), statistics.median(peaks), code


def big_channel(messages: int) -> FakeChannel:
    c = rich_channel()
    c.messages = [post(c.id, i, f"post {i}") for i in range(1, messages + 1)]
    return c


# -- TG_MEDIA_DOWNLOAD: a channel whose every post carries images ----------------------------

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
    results: dict[tuple[int, str], dict[str, Any]], expected: dict[int, tuple[int, set[int]]]
) -> list[str]:
    """What the design says each pass costs, against the calls it made (the traced run's)."""
    problems = []
    for (posts, mode), result in results.items():
        images, dcs = expected[posts]
        pages = result["log"]["steady"]["messages.GetHistory"]
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
            if which == "steady" and sum(got.values()) != 2:
                problems.append(
                    f"{posts} posts, {mode}, steady: {sum(got.values())} calls, not 2: "
                    f"{pages} getHistory pages (at most 100 messages a call)"
                )
    return problems


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Telegram call")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lat, rep = args.latency, args.repeat
    ms: Callable[[float], str] = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            url = server.url
            p5 = product(lat, rep, url, rich_channel())
            p20 = product(lat, rep, url, rich_channel(), TG_POSTS_COUNT="20")
            p100 = product(lat, rep, url, big_channel(10_000), TG_POSTS_COUNT="100")
            big5 = product(lat, rep, url, big_channel(10_000))
            base = baseline(lat, rep, 5)
            procs = processes(url, tmp, rep)
            images = image_channel()
            expected = {n: expected_images(images, n) for n in MEDIA_POSTS}
            media = {
                (n, mode): media_product(lat, rep, url, images, posts=n, mode=mode)
                for n in MEDIA_POSTS
                for mode in MEDIA_MODES
            }
        finally:
            server.stop()

    rows = [("figure", "product", "target", "baseline (high-level Pyrogram)")]
    rows.append(
        (
            "Telegram calls, first pass (5 posts)",
            f"{p5['first']['calls']:.0f}",
            "3",
            f"{base['calls']:.0f} ({base['calls'] / p5['first']['calls']:.1f}x)",
        )
    )
    rows.append(
        (
            "Telegram calls, steady state (5 posts)",
            f"{p5['steady']['calls']:.0f}",
            "2",
            f"{base['calls']:.0f} ({base['calls'] / p5['steady']['calls']:.1f}x)",
        )
    )
    rows.append(
        (
            "Telegram calls, first / steady (20 posts)",
            f"{p20['first']['calls']:.0f} / {p20['steady']['calls']:.0f}",
            "3 / 2",
            "",
        )
    )
    rows.append(
        (
            "Round trips on the critical path, steady",
            f"{p5['steady']['round_trips']:.0f}",
            "1",
            f"{base['round_trips']:.0f}",
        )
    )
    rows.append(
        (
            f"Pass after connect, {ms(lat)} latency, steady",
            ms(p5["steady"]["fetch_s"]),
            f"< {ms(2 * lat + 0.3)}",
            "",
        )
    )
    rows.append(
        (
            "Whole pass in-process (connect included), steady",
            ms(p5["steady"]["pass_s"]),
            "",
            f"{ms(base['pass_s'])} ({base['pass_s'] / p5['steady']['pass_s']:.1f}x)",
        )
    )
    rows.append(
        (
            "Redis round trips per pass, first / steady",
            f"{p5['first']['redis_trips']:.0f} / {p5['steady']['redis_trips']:.0f}",
            "2",
            "",
        )
    )
    rows.append(
        (
            "10,000-message channel, 5 posts: calls / pass after connect",
            f"{big5['steady']['calls']:.0f} / {ms(big5['steady']['fetch_s'])}",
            "as small",
            "",
        )
    )
    rows.append(
        (
            "10,000-message channel, 100 posts: calls / pass after connect",
            f"{p100['steady']['calls']:.0f} / {ms(p100['steady']['fetch_s'])}",
            "",
            "",
        )
    )
    for name, (wall, peak, code) in procs.items():
        target = {"tgstats collect --once": f"< {ms(1.5 + lat * 4)}, < 90 MB"}.get(
            name, "< 300 ms, < 40 MB"
        )
        figure = f"{ms(wall)}, {peak:.0f} MB"
        rows.append((f"process: {name} (exit {code})", figure, target, ""))
    python = sys.version.split()[0]
    print(f"latency {ms(lat)} per Telegram call; medians of {rep} runs; Python {python}")
    print(table(rows))
    print_media(images, media, expected)


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
    problems = media_checks(results, expected)
    print()
    print("Against the design:", "as expected" if not problems else "")
    for problem in problems:
        print(f"  UNEXPECTED {problem}")


def processes(url: str, tmp: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    fake = FakeTelegram()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update({"TG_API_ID": "12345", "TG_API_HASH": "0123456789abcdef0123456789abcdef",
                "TG_SESSION_STRING": fake.session_string(), "REDIS_URL": url,
                "PYTHONPATH": str(REPO), "FAKE_TG_LATENCY": "0.05"})  # fmt: skip
    script = str(Path(sys.executable).with_name("tgstats"))
    cwd = Path(tmp)
    return {
        # the collect process imports the stand-in Telegram (tests/) in place of the network
        "tgstats collect --once": process(
            [sys.executable, "-m", "tests.fake_tgstats", "collect", "--once"], env, cwd, repeat
        ),
        "tgstats show": process([script, "show"], env, cwd, repeat),
        "tgstats show --check": process([script, "show", "--check"], env, cwd, repeat),
        "tgstats --help": process([script, "--help"], env, cwd, repeat),
    }


if __name__ == "__main__":
    main()
