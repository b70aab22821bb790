"""`tgstats` with the stand-in Telegram in place of the network, for subprocess tests.

Run as `python -m tests.fake_tgstats collect …` with the repository on PYTHONPATH.
FAKE_TG_LATENCY sets seconds of latency per call. The session string is the fake
server's (its auth key is deterministic): see `FakeTelegram.session_string`.
"""

from __future__ import annotations

import os

from itam_tgstats import collect
from itam_tgstats.cli import main
from tests.channels import rich_channel
from tests.faketg import FakeTelegram
from tests.helpers import source_factory

fake = FakeTelegram()
fake.add_channel(rich_channel())
fake.latency = float(os.environ.get("FAKE_TG_LATENCY", "0"))
collect.default_source_factory = source_factory(fake)

if __name__ == "__main__":
    main()
