"""history.py: when a post gains a point, the views at a mark, ERR24 (pure functions)."""

from __future__ import annotations

import pytest

from itam_tgstats.models import ChannelSnapshot, ChannelStats, Post
from itam_tgstats.store.series import (
    DAY,
    HOUR,
    Followed,
    Point,
    advance,
    err24_percent,
    gains_point,
    interpolate,
    parse_point,
    stored_marks,
    views_at,
)

NOW = 1_800_000_000


def point(t: int, views: int) -> Point:
    return Point(t, views, 0, 0, 0)


@pytest.mark.parametrize(
    ("age", "last_age", "days", "gains"),
    [
        (0, None, 7, True),
        (DAY - 1, 1, 7, True),  # young: every pass, however recent the last point
        (DAY, None, 7, True),  # old, no point yet
        (DAY, HOUR, 7, True),  # the last point exactly an hour old
        (DAY, HOUR - 1, 7, False),
        (7 * DAY - 1, 2 * HOUR, 7, True),
        (7 * DAY, 2 * HOUR, 7, False),  # no longer younger than TG_POST_HISTORY_DAYS
        (-60, None, 1, True),  # a date a little ahead of our clock: young
    ],
)
def test_gains_point(age: int, last_age: int | None, days: int, gains: bool) -> None:
    last = None if last_age is None else point(NOW - last_age, 1)
    assert gains_point(age, last, NOW, days) is gains


@pytest.mark.parametrize(
    ("age", "last_age", "gains"),
    [
        (DAY + 60, 120, True),  # the first pass past the 24-hour mark: views_24h settles
        (DAY + 60, 30, False),  # a point past the mark already: hourly again
        (DAY + 900, 900, False),  # a point exactly at the mark settles it: hourly again
        (DAY + 60, HOUR, True),
        (DAY - 60, 30, True),  # younger than a day: every pass
    ],
)
def test_a_post_no_longer_kept_gains_its_point_past_the_24_hour_mark(
    age: int, last_age: int, gains: bool
) -> None:
    last = point(NOW - last_age, 1)
    assert gains_point(age, last, NOW, 7, kept=False) is gains
    assert gains_point(age, last, NOW, 7) is (gains and (age < DAY or last_age >= HOUR))


def test_interpolate_between_and_at_points() -> None:
    assert interpolate(150, point(100, 10), point(200, 20)) == 15
    assert interpolate(100, point(100, 10), point(200, 20)) == 10
    assert interpolate(200, point(100, 10), point(200, 20)) == 20
    assert interpolate(125, point(100, 10), point(200, 12)) == 11  # 10.5 rounds up
    assert interpolate(100, point(100, 10), point(100, 12)) == 12
    assert interpolate(150, point(100, 20), point(200, 10)) == 15  # views can drop


def test_views_at_a_mark() -> None:
    mark = 1000
    assert views_at(mark, 5, point(0, 1), point(2000, 9)) == 5  # settled stays
    assert views_at(mark, None, point(500, 10), point(1500, 30)) == 20
    assert views_at(mark, None, None, point(1500, 30)) is None  # nothing at or before
    assert views_at(mark, None, point(1200, 10), point(1500, 30)) is None
    assert views_at(mark, None, point(500, 10), None) is None  # nothing at or after
    assert views_at(mark, None, point(500, 10), point(900, 12)) is None  # not yet
    assert views_at(mark, None, None, point(1000, 7)) == 7  # a point exactly at the mark
    assert views_at(mark, None, point(1000, 7), point(1500, 9)) == 7


def test_err24_percent() -> None:
    assert err24_percent([100, 300, None], 1000) == 20.0
    assert err24_percent([1, 2], 3) == 50.0
    assert err24_percent([1], 3) == 33.3
    assert err24_percent([None], 1000) is None
    assert err24_percent([10], 0) is None
    assert err24_percent([], 10) is None
    # A post nobody read in a day counts as 0: it lowers the mean, it is not left out.
    assert err24_percent([0, 300], 1000) == 15.0
    assert err24_percent([0], 1000) == 0.0


def test_points_read_back_and_garbage_is_skipped() -> None:
    text = point(5, 6).to_json()
    assert text == '{"t":5,"views":6,"reactions":0,"forwards":0,"comments":0}'
    assert parse_point(text) == point(5, 6)
    assert parse_point("{not json") is None
    assert parse_point('{"t": 1}') is None
    assert parse_point('{"t":1,"views":true,"reactions":0,"forwards":0,"comments":0}') is None
    assert parse_point("[1]") is None
    assert parse_point("[" * 1000 + "]" * 1000) is None  # no RecursionError


@pytest.mark.parametrize("ahead", [301, 3600, 2_000_000_000])
def test_a_last_point_ahead_of_the_clock_does_not_freeze_the_series(ahead: int) -> None:
    """A point more than a few minutes ahead (a clock that was ahead, a planted value) is no
    reason to skip one: the post gains a point (the Lua step drops the points ahead of it,
    tests/store/test_scripts.py), and no view is interpolated from the point ahead."""
    assert gains_point(HOUR, point(NOW + ahead, 1), NOW, 7) is True
    assert gains_point(2 * DAY, point(NOW + ahead, 1), NOW, 7) is True
    snapshot = ChannelSnapshot(
        stats=ChannelStats(channel_id=-1001, username="p", title="P", subscribers_count=10,
                           posts_count=2, last_post_date=None, collected_at=""),
        posts=[Post(id=1, text="", date="2027-01-15T07:00:00+00:00", views=9, forwards=0),
               Post(id=2, text="", date="2027-01-15T07:00:00+00:00", views=9, forwards=0)],
    )  # fmt: skip
    posted = 1_800_000_000 - HOUR  # the posts' date
    advanced, series = advance(
        snapshot,
        last_points={
            1: Followed(point(posted + HOUR + ahead, 1_000_000), posted),
            2: Followed(point(posted + 60, 1), posted),
        },
        stored={},
        now=posted + HOUR,
        days=7,
    )
    assert series is not None
    assert set(series.appended) == {1, 2}
    assert advanced.posts[0].views_1h == 9  # this pass's point, at the 1 h mark exactly


@pytest.mark.parametrize("ahead", [0, 300])
def test_a_last_point_a_few_minutes_ahead_is_a_second_pass_in_the_same_moment(
    ahead: int,
) -> None:
    assert gains_point(HOUR, point(NOW + ahead, 1), NOW, 7) is False


def test_stored_marks_from_stored_posts() -> None:
    posts = [
        {"id": 1, "views_1h": 5, "views_24h": None},
        {"id": 2},
        {"id": 3, "views_1h": "7", "views_24h": True},
        {"id": "x"},
        "junk",
    ]
    assert stored_marks(posts) == {1: (5, None), 2: (None, None), 3: (None, None)}
    assert stored_marks("not a list") == {}
