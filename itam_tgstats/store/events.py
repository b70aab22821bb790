"""What changed, told to the site: a pass's entries for the stream `tg:events`.

Pure: the stored posts, stats and status the pass read at its start (PassStart) against
what it read now. The pass's one MULTI/EXEC appends the entries (write.py), so an entry is
in Redis exactly when the snapshot that shows it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itam_tgstats.errors import ChannelError
from itam_tgstats.models import ChannelSnapshot, iso_utc
from itam_tgstats.store.status import ChannelOutcome, outcome_of

if TYPE_CHECKING:
    from itam_tgstats.store.start import PassStart

# The fields of a post whose change is an edit (counters are not: views, reactions, …).
EDIT_FIELDS = ("edited_at", "text_html", "media", "link_preview", "poll", "buttons")
# What a poll is compared by: its question, its answers' texts and its flags (not votes).
POLL_FIELDS = ("question", "closed", "multiple_choice", "quiz")


@dataclass(frozen=True)
class Event:
    """One entry of `tg:events`."""

    type: str  # post_new, post_edited, post_deleted, channel_added, _failed, _recovered
    channel: str  # the configured name (lower-cased, without @)
    at: str  # the pass's time, ISO UTC
    post_id: int | None = None
    changed: tuple[str, ...] = ()  # post_edited: the fields that changed
    error: str | None = None  # channel_failed: the one line

    def fields(self) -> dict[str, str]:
        """The entry's fields as the stream holds them: strings, in this order."""
        data = {"type": self.type, "channel": self.channel, "at": self.at}
        if self.post_id is not None:
            data["post_id"] = str(self.post_id)
        if self.changed:
            data["changed"] = ",".join(self.changed)
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class EventBatch:
    """What a pass appends to `tg:events`, and the stream's MAXLEN ~ (TG_EVENTS_MAX)."""

    entries: tuple[Event, ...] = ()
    maxlen: int = 0


def pass_events(
    start: PassStart,
    names: Sequence[str],
    results: Sequence[ChannelSnapshot | ChannelError],
    now: float,
    maxlen: int,
) -> EventBatch:
    """A written pass's entries, channel by channel in the configured order: the channel's
    own (added, recovered or failed), then its posts' (deleted, edited, new; by id).
    None with `maxlen` 0 (TG_EVENTS_MAX=0: off)."""
    if maxlen <= 0:
        return EventBatch()
    at = iso_utc(now)
    entries: list[Event] = []
    for index, (name, result) in enumerate(zip(names, results, strict=True)):
        outcome = outcome_of(result)
        if isinstance(result, ChannelError):
            entries += channel_events(start.status, {name: outcome}, at)
            continue
        stored_id = start.channel_ids[index] if index < len(start.channel_ids) else None
        if stored_id != result.stats.channel_id:  # never read, or the name changed hands
            entries.append(Event("channel_added", name, at))
            continue
        entries += channel_events(start.status, {name: outcome}, at)
        stored = start.channel_posts[index] if index < len(start.channel_posts) else None
        entries += post_events(name, stored, result, at)
    return EventBatch(tuple(entries), maxlen)


def failure_events(
    status: dict[str, Any] | None, outcomes: Mapping[str, ChannelOutcome], now: float, maxlen: int
) -> EventBatch:
    """A failed pass's entries (every channel failed): `channel_failed` for each that
    succeeded last time."""
    if maxlen <= 0:
        return EventBatch()
    return EventBatch(tuple(channel_events(status, outcomes, iso_utc(now))), maxlen)


def channel_events(
    status: dict[str, Any] | None, outcomes: Mapping[str, ChannelOutcome], at: str
) -> list[Event]:
    """Transitions only: `channel_failed` when a channel whose last pass read it fails,
    `channel_recovered` when one whose last pass failed is read (by `tg:status.channels`
    as the pass found it)."""
    entries = (status or {}).get("channels")
    entries = entries if isinstance(entries, dict) else {}
    events: list[Event] = []
    for name, outcome in outcomes.items():
        entry = entries.get(name)
        was_ok = entry.get("ok") if isinstance(entry, dict) else None
        if outcome.error is None and was_ok is False:
            events.append(Event("channel_recovered", name, at))
        elif outcome.error is not None and was_ok is True:
            events.append(Event("channel_failed", name, at, error=outcome.error))
    return events


def post_events(name: str, stored: Any, snapshot: ChannelSnapshot, at: str) -> list[Event]:
    """One channel's post events: its stored posts (as read; unreadable: none) against the
    new answer.

    Deleted: a stored post the answer no longer holds although it reaches back to its id
    (a post that only left the kept window is still in the answer, or older than all of
    it). Edited: a post stored and kept whose rendering changed (EDIT_FIELDS). New: a kept
    post newer than the newest stored one.
    """
    if not isinstance(stored, list):
        return []
    before = {
        p["id"]: p
        for p in stored
        if isinstance(p, dict) and isinstance(p.get("id"), int) and not isinstance(p["id"], bool)
    }
    after = {p.id: p for p in snapshot.posts}
    reached = min(snapshot.message_ids, default=None)
    events = [
        Event("post_deleted", name, at, post_id=i)
        for i in sorted(before)
        if reached is not None and i >= reached and i not in snapshot.message_ids
    ]
    for i in sorted(before.keys() & after.keys()):
        changed = changed_fields(before[i], {f: getattr(after[i], f) for f in EDIT_FIELDS})
        if changed:
            events.append(Event("post_edited", name, at, post_id=i, changed=changed))
    newest = max(before, default=None)
    events += [
        Event("post_new", name, at, post_id=i)
        for i in sorted(after)
        if newest is None or i > newest
    ]
    return events


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """The EDIT_FIELDS whose values differ, in that order. A field the stored post lacks
    (an older version wrote it) tells nothing."""
    return tuple(
        f
        for f in EDIT_FIELDS
        if f in before and comparable(f, before[f]) != comparable(f, after.get(f))
    )


def comparable(field: str, value: Any) -> Any:
    """What of a field an edit changes: `media` and `link_preview` without their `image`
    (a download is not an edit), `poll` without its votes."""
    if field == "media" and isinstance(value, list):
        return [without_image(item) for item in value]
    if field == "link_preview":
        return without_image(value)
    if field == "poll" and isinstance(value, dict):
        answers = value.get("answers")
        texts = [a.get("text") if isinstance(a, dict) else a for a in answers or []]
        return {**{k: value.get(k) for k in POLL_FIELDS}, "answers": texts}
    return value


def without_image(card: Any) -> Any:
    """A media item or link card without its `image` key (anything else as it is)."""
    return {k: v for k, v in card.items() if k != "image"} if isinstance(card, dict) else card
