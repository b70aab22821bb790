"""`tgstats` with the stand-in Telegram in place of the network, for subprocess tests.

Run as `python -m tests.fake_tgstats collect …` with the repository on PYTHONPATH.
FAKE_TG_LATENCY sets seconds of latency per call. The session string is the fake
server's (its auth key is deterministic): see `FakeTelegram.session_string`. For
`session`, the fake knows the phone +70000000001, with the 2FA password FAKE_TG_PASSWORD
when that is set; the login code is 12345.
"""

from __future__ import annotations

import functools
import os

from itam_tgstats import collect
from itam_tgstats.cli import main
from itam_tgstats.telegram import login as session_module
from tests.channels import rich_channel
from tests.fakeauth import FakeAccount
from tests.faketg import FakeTelegram
from tests.helpers import source_factory

fake = FakeTelegram()
fake.add_channel(rich_channel())
fake.latency = float(os.environ.get("FAKE_TG_LATENCY", "0"))
collect.default_source_factory = source_factory(fake)
fake.add_account(
    FakeAccount(
        phone="70000000001",
        user_id=fake.user_id,
        password=os.environ.get("FAKE_TG_PASSWORD") or None,
    )
)
session_module.login = functools.partial(  # type: ignore[assignment]
    session_module.login, protocol_factory=fake.protocol_factory
)

if __name__ == "__main__":
    main()
