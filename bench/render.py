"""The renderer's cost: text and raw entities → `text_html`, nested and crossing.

    python bench/render.py [--repeat 3] [--sizes 100,1000,20000]   (also part of make bench)

Each message is 2·n characters with n bold/italic entities: nested (entity i covers
[i, 2n − i), each inside the one before) or crossing (entity i covers [i, i + n): every
pair overlaps without nesting, Telegram's worst case for a tree of tags). Prints the median
time of `--repeat` runs and the size of the HTML, also as a multiple of the text's length.
Pure code: no Redis, no Telegram.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pyrogram import raw  # noqa: E402

from bench.common import table  # noqa: E402
from itam_tgstats.render.text_html import to_html  # noqa: E402

SIZES = (100, 1_000, 20_000)
KINDS = (raw.types.MessageEntityBold, raw.types.MessageEntityItalic)


def message(shape: str, n: int) -> tuple[str, list[Any]]:
    """The text and entities of one benchmark message (`nested` or `crossing`)."""
    text = "x" * (2 * n)
    if shape == "nested":
        spans = [(i, 2 * n - 2 * i) for i in range(n)]
    else:
        spans = [(i, n) for i in range(n)]
    return text, [
        KINDS[i % 2](offset=offset, length=length) for i, (offset, length) in enumerate(spans)
    ]


def run_render(repeat: int, sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """One row per shape and size: median seconds, HTML characters, text characters."""
    rows = []
    for shape in ("nested", "crossing"):
        for n in sizes:
            text, entities = message(shape, n)
            times, html = [], ""
            for _ in range(repeat):
                started = time.perf_counter()
                html = to_html(text, entities)
                times.append(time.perf_counter() - started)
            rows.append(
                {
                    "shape": shape,
                    "entities": n,
                    "seconds": statistics.median(times),
                    "html": len(html),
                    "text": len(text),
                }
            )
    return rows


def print_render(rows: list[dict[str, Any]], repeat: int) -> None:
    """The renderer's cost table."""
    print()
    print(f"text_html: a message of 2·n characters with n entities; median of {repeat} runs")
    lines = [("entities", "shape", "time", "HTML size", "HTML / text")]
    for r in rows:
        lines.append(
            (
                f"{r['entities']:,}",
                r["shape"],
                f"{r['seconds'] * 1000:.1f} ms",
                f"{r['html']:,} chars",
                f"{r['html'] / r['text']:.1f}x",
            )
        )
    print(table(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print_render(run_render(args.repeat, sizes), args.repeat)


if __name__ == "__main__":
    main()
