"""The pass's images: which the posts need that Redis lacks, downloaded within the time left."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from itam_tgstats.models import ChannelSnapshot, MediaFile

log = logging.getLogger(__name__)

# A pass's downloads take at most this long, and leave this much of TG_TIMEOUT to the rest.
DOWNLOAD_TIMEOUT = 30.0
DOWNLOAD_MARGIN = 5.0


class Download(Protocol):
    async def __call__(self, files: Sequence[MediaFile], *, timeout: float) -> dict[str, bytes]: ...


async def with_images(
    snapshots: Sequence[ChannelSnapshot],
    download: Download,
    kept: set[str],
    *,
    seconds_left: float,
) -> tuple[list[ChannelSnapshot], dict[str, bytes]]:
    """Download the posts' images Redis does not hold yet, for all channels at once; each
    `image` names a stored key or is null (not downloaded, or its download failed: the next
    pass tries again).

    `kept`: the images Redis holds (checked this pass). Downloads get the pass's time left
    but DOWNLOAD_MARGIN: a slow download never fails the pass.
    """
    wanted = {f.key: f for snap in snapshots for post in snap.posts for f in post.files}
    missing = [f for key, f in wanted.items() if key not in kept]
    budget = min(DOWNLOAD_TIMEOUT, seconds_left - DOWNLOAD_MARGIN)
    downloaded: dict[str, bytes] = {}
    if missing and budget < 1:
        log.warning("images: no time left in TG_TIMEOUT; %s left for the next pass", len(missing))
    elif missing:
        downloaded = await download(missing, timeout=budget)
        log.info(
            "images: %s downloaded, %s failed", len(downloaded), len(missing) - len(downloaded)
        )
    available = kept | downloaded.keys()
    return [s.with_images(available) for s in snapshots], downloaded
