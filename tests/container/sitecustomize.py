"""The stand-in Telegram for `tgstats collect` inside the container, for scripts/image-check.

Never part of the image: the check mounts the repository's `tests` folder read-only at
/stand-in/tests and sets PYTHONPATH=/stand-in/tests/container:/stand-in, so every Python
process of the container imports this file at start. Only `tgstats collect` is changed:
its Telegram is `tests.faketg.FakeTelegram` (the channel of `tests.channels.rich_channel`),
answering each call after FAKE_TG_LATENCY seconds (default 0) so that a pass can be caught
midway. The session string it accepts is `FakeTelegram().session_string(TG_API_ID)`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def install_stand_in() -> None:
    """Point `itam_tgstats.collect.default_source_factory` at a fresh FakeTelegram."""
    from itam_tgstats import collect
    from itam_tgstats.telegram.client import TelegramSource
    from tests.channels import rich_channel
    from tests.faketg import FakeTelegram

    fake = FakeTelegram()
    fake.add_channel(rich_channel())
    fake.latency = float(os.environ.get("FAKE_TG_LATENCY") or "0")
    collect.default_source_factory = lambda settings: TelegramSource(
        settings, protocol_factory=fake.protocol_factory
    )


if Path(sys.argv[0]).name == "tgstats" and "collect" in sys.argv[1:]:
    install_stand_in()
