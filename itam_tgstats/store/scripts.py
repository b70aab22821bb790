"""The Lua steps a pass runs on the Redis server, inside its one MULTI/EXEC."""

from __future__ import annotations

from itam_tgstats.store.series import SeriesWrite

# Compare-and-delete in one server-side step: a pass never deletes another pass's lock.
RELEASE_LOCK_SCRIPT = """
if redis.call('type', KEYS[1]).ok == 'string' and redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


# After a MULTI/EXEC Redis applied only in part (its tg:status said ok): write tg:status
# (KEYS[2]) = ARGV[2] unless another pass holds tg:lock (KEYS[1]) now; release the lock if
# this pass (ARGV[1]) still holds it.
CORRECT_STATUS_SCRIPT = """
local holder = false
if redis.call('type', KEYS[1]).ok == 'string' then holder = redis.call('get', KEYS[1]) end
if holder and holder ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2])
if holder then redis.call('del', KEYS[1]) end
return 1
"""


# Take `tg:lock` (KEYS[1]) for ARGV[1], expiring in ARGV[2] ms: 1 when taken, 0 when a pass
# holds it. A lock no pass of this tool could hold (no expiry, one longer than ARGV[3] ms,
# another type) would make every pass skip for good: it is taken over, and the answer is
# what it was ({type, ms to expiry}).
TAKE_LOCK_SCRIPT = """
local found = redis.call('type', KEYS[1]).ok
local left = redis.call('pttl', KEYS[1])
if found == 'string' and left >= 0 and left <= tonumber(ARGV[3]) then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if found == 'none' then return 1 end
return {found, left}
"""

# What `show` reads, in one atomic step (so every value comes from the same passes), each
# value only when it has the type this tool writes and is not too big to load. ARGV[1]: the
# byte cap; ARGV[1 + i]: the type KEYS[i] must have (`string`, `zset`, `hash`, `stream`), or
# `?` and the type: only whether it exists so; the last ARGV: how many of a stream's newest
# entries are read. Each answer: {'ok', value} (a zset: its members in order; a hash: field,
# value, …; a stream: its newest entries, newest first; `?`: '1'), {'none'}, {'type', the
# type found}, {'big', bytes} or {'many', members}.
READ_SCRIPT = """
local cap = tonumber(ARGV[1])
local answers = {}
for i, key in ipairs(KEYS) do
    local want = ARGV[i + 1]
    local only = string.sub(want, 1, 1) == '?'
    if only then want = string.sub(want, 2) end
    local found = redis.call('type', key).ok
    if found == 'none' then
        answers[i] = {'none'}
    elseif found ~= want then
        answers[i] = {'type', found}
    elseif only then
        answers[i] = {'ok', '1'}
    elseif want == 'stream' then
        answers[i] = {'ok', redis.call('xrevrange', key, '+', '-', 'COUNT', ARGV[#KEYS + 2])}
    elseif want == 'string' then
        local size = redis.call('strlen', key)
        if size > cap then answers[i] = {'big', size}
        else answers[i] = {'ok', redis.call('get', key)} end
    elseif want == 'zset' then
        local count = redis.call('zcard', key)
        if count > cap / 16 then answers[i] = {'many', count}
        else
            local members, size = redis.call('zrange', key, 0, -1), 0
            for _, member in ipairs(members) do size = size + #member end
            if size > cap then answers[i] = {'big', size} else answers[i] = {'ok', members} end
        end
    else
        local count = redis.call('hlen', key)
        if count > cap / 16 then answers[i] = {'many', count}
        else
            local size = 0
            for _, field in ipairs(redis.call('hkeys', key)) do
                size = size + #field + redis.call('hstrlen', key, field)
            end
            if size > cap then answers[i] = {'big', size}
            else answers[i] = {'ok', redis.call('hgetall', key)} end
        end
    end
end
return answers
"""


# GET only a string: on a key of another type (foreign data) GET fails, and inside EXEC one
# failing step leaves the rest of the transaction applied.
_GET_STRING = """
local function get_string(key)
    if redis.call('type', key).ok ~= 'string' then return false end
    return redis.call('get', key)
end
"""

# Upgrading from one channel to per-channel keys: the first channel's own history starts as
# a copy of the original history, when that history is this channel's (its stats say so).
ADOPT_HISTORY_SCRIPT = (
    _GET_STRING
    + """
if redis.call('exists', KEYS[1]) == 0 then
    local stats = get_string(KEYS[3])
    if stats and string.find(stats, '"channel_id": ' .. ARGV[1] .. ',', 1, true) then
        redis.call('zunionstore', KEYS[1], 1, KEYS[2])
    end
end
return 0
"""
)


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
# last-points hash, the entries are set there. A point is appended only to an array of this
# tool's points (`[{"t":…}]`); anything else there (`[]`, `""`, foreign data: cutting its
# last character would leave invalid JSON) starts afresh. A series stays in time order: its
# points at or after the new one's time (written by a clock that was ahead) are dropped
# first.
_APPLY_SERIES = """
local function points(value)
    return value and string.sub(value, 1, 6) == '[{"t":' and string.sub(value, -2) == '}]'
end
local function time_of(point)
    return tonumber(string.match(point, '^{"t":(%-?%d+)'))
end
local function with_point(series, point)
    local t = time_of(point)
    -- the time of the last point, read from its end (a point is 80 to 130 bytes)
    local last = tonumber(string.match(string.sub(series, -160), '{"t":(%-?%d+)[^{}]*}%]$'))
    if not t or not last or last < t then
        return string.sub(series, 1, -2) .. ',' .. point .. ']'
    end
    local kept = {}
    for old in string.gmatch(series, '{[^{}]*}') do
        local old_t = time_of(old)
        if old_t and old_t < t then kept[#kept + 1] = old end
    end
    kept[#kept + 1] = point
    return '[' .. table.concat(kept, ',') .. ']'
end
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
        if points(old) then
            redis.call('hset', key, ARGV[i], with_point(old, ARGV[i + 1]))
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
# together; stats of another type never are), else a copy. HGETALL/HSET rather than COPY,
# which needs Redis 6.2.
MIRROR_SERIES_SCRIPT = (
    _APPLY_SERIES
    + """
local function same_stats(a, b)
    local ta, tb = redis.call('type', a).ok, redis.call('type', b).ok
    if ta == 'none' and tb == 'none' then return true end
    return ta == 'string' and tb == 'string' and redis.call('get', a) == redis.call('get', b)
end
if same_stats(KEYS[3], KEYS[4]) then
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
