"""The Lua steps a pass runs on the Redis server, inside its one MULTI/EXEC."""

from __future__ import annotations

from itam_tgstats.store.series import SeriesWrite

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


# Keys the pass writes with typed commands (ZADD, HSET) that hold another type (foreign
# data, a hand-made key) are deleted first: a command failing inside EXEC would leave the
# rest of the transaction applied. KEYS: the keys; ARGV: the type each must have.
ENSURE_TYPES_SCRIPT = """
for i, key in ipairs(KEYS) do
    local found = redis.call('type', key).ok
    if found ~= 'none' and found ~= ARGV[i] then redis.call('del', key) end
end
return 0
"""


# ARGV from `first`: reset ("1": start the series afresh, the name now is another channel's),
# n, the n post ids whose series stay, m, m (post id, point JSON) pairs to append, then
# (post id, entry JSON) pairs for the last-points hash. Fields of the other posts are
# deleted; each point is appended to its post's array; when `last` names the channel's
# last-points hash, the entries are set there.
_APPLY_SERIES = """
local function hash_only(key)
    if redis.call('type', key).ok ~= 'hash' then redis.call('del', key) end
end
local function apply(key, first, last)
    hash_only(key)
    if last then hash_only(last) end
    if ARGV[first] == '1' then
        redis.call('del', key)
        if last then redis.call('del', last) end
    end
    local n = tonumber(ARGV[first + 1])
    local kept = {}
    for i = first + 2, first + 1 + n do kept[ARGV[i]] = true end
    for _, k in ipairs(last and {key, last} or {key}) do
        for _, field in ipairs(redis.call('hkeys', k)) do
            if not kept[field] then redis.call('hdel', k, field) end
        end
    end
    local m = tonumber(ARGV[first + n + 2])
    local entries = first + n + 3 + 2 * m
    for i = first + n + 3, entries - 1, 2 do
        local old = redis.call('hget', key, ARGV[i])
        if old then
            redis.call('hset', key, ARGV[i], string.sub(old, 1, -2) .. ',' .. ARGV[i + 1] .. ']')
        else
            redis.call('hset', key, ARGV[i], '[' .. ARGV[i + 1] .. ']')
        end
    end
    if last then
        for i = entries, #ARGV, 2 do redis.call('hset', last, ARGV[i], ARGV[i + 1]) end
    end
end
"""
APPEND_SERIES_SCRIPT = _APPLY_SERIES + "apply(KEYS[1], 1, KEYS[2])\nreturn 0\n"

# The original `tg:channel:post_history` (KEYS[1]) follows the first channel's own key
# (KEYS[2], already changed in this transaction): the same changes while the two were the
# same (their stats, KEYS[3] and KEYS[4], not replaced yet, are then byte-equal: written
# together), else a copy. HGETALL/HSET rather than COPY, which needs Redis 6.2.
MIRROR_SERIES_SCRIPT = (
    _APPLY_SERIES
    + """
if redis.call('get', KEYS[3]) == redis.call('get', KEYS[4]) then
    apply(KEYS[1], 1, false)
else
    redis.call('del', KEYS[1])
    local all = redis.call('hgetall', KEYS[2])
    if #all > 0 then redis.call('hset', KEYS[1], unpack(all)) end
end
return 0
"""
)


# The original `tg:channel:admin_stats` (KEYS[1]) holds what the first channel's own key
# (KEYS[2]) holds, or nothing: after a reorder, never another channel's statistics. Written
# only when the two differ (a script's writes are what Redis replicates and appends to its
# AOF: a steady pass writes nothing). A key of another type counts as missing.
MIRROR_ADMIN_STATS_SCRIPT = """
local function text(key)
    if redis.call('type', key).ok == 'string' then return redis.call('get', key) end
    return false
end
local own, original = text(KEYS[2]), text(KEYS[1])
if own == original and (own or redis.call('exists', KEYS[1]) == 0) then return 0 end
if own then redis.call('set', KEYS[1], own) else redis.call('del', KEYS[1]) end
return 1
"""


def series_arguments(series: SeriesWrite) -> list[str]:
    """APPEND_SERIES_SCRIPT's arguments for one channel's series changes."""
    pairs = [str(x) for post_id, point in series.appended.items() for x in (post_id, point)]
    entries = [str(x) for post_id, entry in series.last.items() for x in (post_id, entry)]
    reset = "1" if series.reset else "0"
    return [
        reset,
        str(len(series.kept)),
        *map(str, series.kept),
        str(len(series.appended)),
        *pairs,
        *entries,
    ]
