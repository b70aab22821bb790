"""The stand-in Telegram for `tgstats collect` inside the container, for scripts/image-check.

Never part of the image: the check mounts the repository's `tests` folder read-only at
/stand-in/tests and sets PYTHONPATH=/stand-in/tests/container:/stand-in, so every Python
process of the container imports this file at start. Only `tgstats collect` is changed:
its Telegram is `tests.faketg.FakeTelegram` (the channel of `tests.channels.rich_channel`),
answering each call after FAKE_TG_LATENCY seconds (default 0) so that a pass can be caught
midway. The session string it accepts is `FakeTelegram().session_string(TG_API_ID)`.

FAKE_TG_SILENT=connect: Telegram never answers anything (the connection opens, nothing comes
back); FAKE_TG_SILENT=calls: the connection is set up, then no call is ever answered (the
pass runs into TG_TIMEOUT).
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
    silent = os.environ.get("FAKE_TG_SILENT", "")
    if silent == "calls":
        fake.hang |= {"contacts.ResolveUsername", "channels.GetFullChannel", "messages.GetHistory"}
    transport = fake.protocol_factory

    class Silent(transport):  # type: ignore[misc, valid-type]
        async def send(self, data: bytes) -> None:
            pass  # swallowed: nothing ever comes back

    factory = Silent if silent == "connect" else transport
    collect.default_source_factory = lambda settings: TelegramSource(
        settings, protocol_factory=factory
    )


if Path(sys.argv[0]).name == "tgstats" and "collect" in sys.argv[1:]:
    install_stand_in()
