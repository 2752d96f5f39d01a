package msg

// The Redis store's scripts. Each operation is one script, so one round trip and
// atomic: no other command runs between its reads and writes. Redis Lua numbers are
// doubles, so seqs, ids and counts are exact up to 2^53 (at a million messages a
// second, ~285 years of ids).
//
// A user's keys are head (string: the last seq assigned) and inbox (list). The
// invariant every script keeps: the inbox holds exactly seqs head-LLEN+1 .. head,
// oldest first, so a seq's list index is seq - first with first = head-LLEN+1.
// That holds because messages are only pushed at the right, with the seq just
// assigned, and only removed from the left (by Ack and by the window trim).

// appendScript stores one message, unless its identity is remembered: then it
// stores nothing and returns the first append's seq and id, with evicted 0 and the
// stored count unchanged. Either way it marks the recipient in the pending set (its
// messages are to be routed; see Redis.Unmark).
// KEYS: ids, stored, head, inbox, epoch, pending, and the message's dedupe key if it
// has a client message id. ARGV: per-user limit, the message's stored encoding
// without its first 16 bytes (seq and id, which the script prepends), candidate
// epoch, dedupe window in ms, recipient uid.
// Returns {seq, id, evicted, stored, epoch, deduplicated (0 or 1)}.
const appendScript = luaEpochOf + `
local epoch = epochOf(KEYS[5], ARGV[3])
redis.call('SADD', KEYS[6], ARGV[5])
if KEYS[7] then
	local seen = redis.call('GET', KEYS[7])
	if seen then
		local sep = string.find(seen, ':', 1, true)
		return {tonumber(string.sub(seen, 1, sep - 1)), tonumber(string.sub(seen, sep + 1)), 0,
			tonumber(redis.call('GET', KEYS[2]) or '0'), epoch, 1}
	end
end
local id = redis.call('INCR', KEYS[1])
local seq = redis.call('INCR', KEYS[3])
local n = redis.call('RPUSH', KEYS[4], struct.pack('>I8I8', seq, id) .. ARGV[2])
local evicted = 0
local limit = tonumber(ARGV[1])
if n > limit then
	evicted = n - limit
	redis.call('LTRIM', KEYS[4], evicted, -1)
end
local stored = redis.call('INCRBY', KEYS[2], 1 - evicted)
if KEYS[7] then
	redis.call('SET', KEYS[7], string.format('%.0f:%.0f', seq, id), 'PX', ARGV[4])
end
return {seq, id, evicted, stored, epoch, 0}
`

// unmarkScript removes users from the pending set, each only if its head is still
// the one given: a user whose head moved on had a message stored since, which the
// tracker that asked may not have seen, and stays marked.
// KEYS: pending, then each user's head key. ARGV: for each user in KEYS order, its
// uid and the head. Returns how many users it removed.
const unmarkScript = `
local removed = 0
for i = 2, #KEYS do
	local head = redis.call('GET', KEYS[i]) or '0'
	if head == ARGV[2 * i - 2] then
		removed = removed + redis.call('SREM', KEYS[1], ARGV[2 * i - 3])
	end
end
return removed
`

// ackScript drops a user's messages through a seq, if the ack's epoch is the
// store's (an ack counted in a lost incarnation names other messages).
// KEYS: stored, head, inbox, epoch. ARGV: seq, epoch. Returns {dropped, stored}.
const ackScript = `
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
	return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[3])
local first = head - len + 1
local seq = tonumber(ARGV[1])
if len == 0 or seq < first then
	return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local n = math.min(seq, head) - first + 1
redis.call('LTRIM', KEYS[3], n, -1)
return {n, redis.call('DECRBY', KEYS[1], n)}
`

// luaEpochOf defines epochOf(key, candidate): the store's epoch, set to the
// caller's candidate if missing — at first use, and again after Redis lost its data,
// so that a lost store never reports an epoch a client saw before.
const luaEpochOf = `
local function epochOf(key, candidate)
	local e = redis.call('GET', key)
	if not e then
		e = candidate
		redis.call('SET', key, e)
	end
	return e
end
`

// epochPrelude reads the store's epoch, setting it to the caller's candidate
// if missing: at first use, and again after Redis lost its data, so that a lost
// store never reports an epoch a client saw before.
const epochPrelude = luaEpochOf + `
local epoch = epochOf(KEYS[1], ARGV[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local len = redis.call('LLEN', KEYS[3])
local first = head - len + 1
`

// windowScript reports a user's window.
// KEYS: epoch, head, inbox. ARGV: candidate epoch. Returns {epoch, head, oldest}.
const windowScript = epochPrelude + `
return {epoch, head, first}
`

// windowsScript reports many users' windows at once.
// KEYS: epoch, then head, inbox for each user. ARGV: candidate epoch. Returns
// {epoch, head1, oldest1, head2, oldest2, ...}.
const windowsScript = luaEpochOf + `
local epoch = epochOf(KEYS[1], ARGV[1])
local out = {epoch}
for i = 2, #KEYS, 2 do
	local head = tonumber(redis.call('GET', KEYS[i]) or '0')
	local len = redis.call('LLEN', KEYS[i + 1])
	out[#out + 1] = head
	out[#out + 1] = head - len + 1
end
return out
`

// rangeScript returns a user's messages after a seq, and the window.
// KEYS: epoch, head, inbox. ARGV: candidate epoch, after, limit (0: all).
// Returns {epoch, head, oldest, {encoded messages}}.
const rangeScript = epochPrelude + `
local after = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local items = {}
if after < head and len > 0 then
	local start = 0
	if after >= first then
		start = after - first + 1
	end
	local stop = -1
	if limit > 0 and start + limit < len then
		stop = start + limit - 1
	end
	items = redis.call('LRANGE', KEYS[3], start, stop)
end
return {epoch, head, first, items}
`
