"""The Lua steps a pass runs on the Redis server, inside its one MULTI/EXEC."""

from __future__ import annotations

from itam_tgstats.history import SeriesWrite

# Compare-and-delete in one server-side step: a pass never deletes another pass's lock.
RELEASE_LOCK_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


# Upgrading from one channel to per-channel keys: the first channel's own history starts as
# a copy of the original history, when that history is this channel's (its stats say so).
ADOPT_HISTORY_SCRIPT = """
if redis.call('exists', KEYS[1]) == 0 then
    local stats = redis.call('get', KEYS[3])
    if stats and string.find(stats, '"channel_id": ' .. ARGV[1] .. ',', 1, true) then
        redis.call('zunionstore', KEYS[1], 1, KEYS[2])
    end
end
return 0
"""


# ARGV: n, the n post ids whose series stay, then (post id, point JSON) pairs to append.
# Fields of posts no longer kept are deleted; each point is appended to its post's array,
# and, when `last` names the channel's last-points hash, recorded there too.
_APPLY_SERIES = """
local function apply(key, first, last)
    local n = tonumber(ARGV[first])
    local kept = {}
    for i = first + 1, first + n do kept[ARGV[i]] = true end
    for _, field in ipairs(redis.call('hkeys', key)) do
        if not kept[field] then redis.call('hdel', key, field) end
    end
    if last then
        for _, field in ipairs(redis.call('hkeys', last)) do
            if not kept[field] then redis.call('hdel', last, field) end
        end
    end
    for i = first + n + 1, #ARGV, 2 do
        local old = redis.call('hget', key, ARGV[i])
        if old then
            redis.call('hset', key, ARGV[i], string.sub(old, 1, -2) .. ',' .. ARGV[i + 1] .. ']')
        else
            redis.call('hset', key, ARGV[i], '[' .. ARGV[i + 1] .. ']')
        end
        if last then redis.call('hset', last, ARGV[i], ARGV[i + 1]) end
    end
end
"""
APPEND_SERIES_SCRIPT = _APPLY_SERIES + "apply(KEYS[1], 1, KEYS[2])\nreturn 0\n"

# The original `tg:channel:post_history` follows the first channel's own key: the same
# changes while it is that channel's (the original stats say so), else a copy of it.
MIRROR_SERIES_SCRIPT = (
    _APPLY_SERIES
    + """
local stats = redis.call('get', KEYS[3])
if stats and string.find(stats, '"channel_id": ' .. ARGV[1] .. ',', 1, true) then
    apply(KEYS[1], 2, false)
elseif redis.call('exists', KEYS[2]) == 1 then
    redis.call('copy', KEYS[2], KEYS[1], 'replace')
else
    redis.call('del', KEYS[1])
end
return 0
"""
)


def series_arguments(series: SeriesWrite) -> list[str]:
    """APPEND_SERIES_SCRIPT's arguments for one channel's series changes."""
    pairs = [str(x) for post_id, point in series.appended.items() for x in (post_id, point)]
    return [str(len(series.kept)), *map(str, series.kept), *pairs]
