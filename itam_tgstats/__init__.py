"""itam-tgstats: the ITAM Telegram channel's numbers, collected into Redis."""

__version__ = "0.1.0"
