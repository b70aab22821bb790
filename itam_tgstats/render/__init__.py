"""Rendering: pure functions from a raw Telegram message to the contract's post JSON."""

from itam_tgstats.render.posts import build_posts, build_stats, complete_posts, history_total

__all__ = ["build_posts", "build_stats", "complete_posts", "history_total"]
