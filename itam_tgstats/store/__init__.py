"""Redis: the keys, a pass's start and its one transaction, series, status, `show`'s reads."""

from __future__ import annotations

from itam_tgstats.store.keys import peer_key
from itam_tgstats.store.read import ShowReads
from itam_tgstats.store.start import PassReads, PassStart
from itam_tgstats.store.write import ChannelWrite, PassWrites

__all__ = ["ChannelWrite", "PassStart", "Store", "peer_key"]


class Store(PassReads, PassWrites, ShowReads):
    """The project's Redis, by job: a pass's start, its write, and `show`'s reads.

    Every method raises StoreError when Redis fails.
    """
