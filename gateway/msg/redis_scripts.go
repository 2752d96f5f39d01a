package msg

// The Redis store's scripts. Each operation is one script, so one round trip and
// atomic: no other command runs between its reads and writes. Every script touches
// the keys of one bucket only (the bucket's and its users', one hash tag), all named
// in KEYS, so that Redis Cluster runs it on one shard. Redis Lua numbers are
// doubles, so seqs, ids, counts, times in µs and epochs are exact up to 2^53 (an id
// is a bucket's counter times 256 plus the bucket: at a million messages a second
// store-wide, over a century of ids).
//
// A user's keys are user (hash: seq, the last seq assigned; epoch, the inbox's
// incarnation; tb, payload bytes appended in it; fb, payload bytes appended before
// its oldest retained message; ft, when that message was stored, in ms) and inbox
// (list). The invariant every script keeps: the inbox holds exactly seqs
// seq-LLEN+1 .. seq, oldest first, so a seq's list index is seq - first with first
// = seq-LLEN+1, and the retained payload bytes are tb - fb. That holds because
// messages are only pushed at the right, with the seq just assigned, and only
// removed from the left (by Ack and by expiry), each removal setting fb and ft from
// the new oldest message (whose stored encoding carries its time and the bytes
// appended before it).
//
// Bounds: every loop runs over the keys the caller passed (at most MaxWindows users
// for windows, sweepBatch for the sweep, unmarkBatch for unmark) or is the binary
// search of expiry, at most log2(quota)+1 LINDEXes; no command's work depends on a
// size a client chooses beyond one message's payload (a RPUSH, or an LINDEX of the
// oldest message after a removal) and the count acknowledged or expired at once
// (LTRIM, at most the quota).

// luaEpochOf defines epochOf(key, candidate): the bucket's epoch, set to the
// caller's candidate if missing — at first use, and again after Redis lost the
// bucket's data, so that a lost bucket never reports an epoch a client saw before —
// and userEpoch(bucketEpoch, nowUS, stepUS): the epoch of an inbox created now (see
// Redis).
const luaEpochOf = `
local function epochOf(key, candidate)
	local e = redis.call('GET', key)
	if not e then
		e = candidate
		redis.call('SET', key, e)
	end
	return e
end
local function userEpoch(e, nowUS, stepUS)
	local base = tonumber(e)
	return string.format('%.0f', base + math.floor(math.max(tonumber(nowUS) - base, 0) / tonumber(stepUS)))
end
`

// luaUser defines loadUser(userKey, inboxKey, nowMS, retentionMS): the user's
// inbox state, nil if it has none, after dropping the messages stored at or before
// nowMS - retentionMS (u.expired of them; the caller adjusts the stored count), and
// dropFront(u, userKey, inboxKey, n), which removes the n oldest messages.
const luaUser = `
local function incrBy(key, n)
	if n == 0 then
		return tonumber(redis.call('GET', key) or '0')
	end
	return redis.call('INCRBY', key, n)
end
local function dropFront(u, uk, ik, n)
	if n <= 0 then
		return
	end
	redis.call('LTRIM', ik, n, -1)
	u.len = u.len - n
	if u.len > 0 then
		local it = redis.call('LINDEX', ik, 0)
		u.ft = struct.unpack('>I8', it, 17)
		u.fb = struct.unpack('>I8', it, 25)
	else
		u.ft, u.fb = 0, u.tb
	end
	redis.call('HSET', uk, 'fb', string.format('%.0f', u.fb), 'ft', string.format('%.0f', u.ft))
end
local function loadUser(uk, ik, nowMS, retentionMS)
	local f = redis.call('HMGET', uk, 'seq', 'epoch', 'tb', 'fb', 'ft')
	if not f[1] then
		return nil
	end
	local u = {seq = tonumber(f[1]), epoch = f[2], tb = tonumber(f[3]), fb = tonumber(f[4]),
		ft = tonumber(f[5]), len = redis.call('LLEN', ik), expired = 0}
	local cutoff = tonumber(nowMS) - tonumber(retentionMS)
	if u.len > 0 and u.ft <= cutoff then
		local lo, hi = 1, u.len -- messages [0, lo) are expired, [hi, len) are not
		while lo < hi do
			local mid = math.floor((lo + hi) / 2)
			if struct.unpack('>I8', redis.call('LINDEX', ik, mid), 17) <= cutoff then
				lo = mid + 1
			else
				hi = mid
			end
		end
		u.expired = lo
		dropFront(u, uk, ik, lo)
	end
	return u
end
`

// appendScript stores one message, unless its identity is remembered: then it
// stores nothing and returns the first append's seq, id and epoch, with the stored
// count unchanged. It refuses a message that would take the inbox over the quota
// (refused 1, nothing stored). A user without an inbox gets one, with
// userEpoch(now); every append refreshes the TTL of the user's keys and its entry in
// the inboxes index. A stored or deduplicated message marks the recipient in the
// pending set (its messages are to be routed; see Redis.Unmark). A deduplicated
// append rewrites the dedupe key (same value, same TTL) so that it always
// replicates something: a WAIT after it then covers the first append too, whichever
// connection made it. The message id is the bucket's counter times the bucket
// count plus the bucket (see Redis).
// KEYS (all of the recipient's bucket): ids, stored, user, inbox, epoch, pending,
// inboxes, and the message's dedupe key if it has a client message id. ARGV: the
// message's stored encoding without its first 32 bytes (seq, id, time, bytes
// before, which the script prepends), candidate epoch, dedupe window in ms,
// recipient uid, now in ms, now in µs, retention in ms, key TTL in ms, epoch step in
// µs, quota messages, quota bytes, payload size, bucket, bucket count.
// Returns {seq, id, refused (0 or 1), stored, epoch, deduplicated (0 or 1),
// expired, created (0 or 1)}.
const appendScript = luaEpochOf + luaUser + `
local epoch = epochOf(KEYS[5], ARGV[2])
if KEYS[8] then
	local seen = redis.call('GET', KEYS[8])
	if seen then
		redis.call('SET', KEYS[8], seen, 'KEEPTTL')
		redis.call('SADD', KEYS[6], ARGV[4])
		local a = string.find(seen, ':', 1, true)
		local b = string.find(seen, ':', a + 1, true)
		local e = epoch
		local idEnd = -1
		if b then
			e = string.sub(seen, b + 1)
			idEnd = b - 1
		end
		return {tonumber(string.sub(seen, 1, a - 1)), tonumber(string.sub(seen, a + 1, idEnd)), 0,
			tonumber(redis.call('GET', KEYS[2]) or '0'), e, 1, 0, 0}
	end
end
local u = loadUser(KEYS[3], KEYS[4], ARGV[5], ARGV[7])
local expired = 0
local size = tonumber(ARGV[12])
if u then
	expired = u.expired
	if u.len + 1 > tonumber(ARGV[10]) or u.tb - u.fb + size > tonumber(ARGV[11]) then
		return {0, 0, 1, incrBy(KEYS[2], -expired), u.epoch, 0, expired, 0}
	end
elseif size > tonumber(ARGV[11]) then
	return {0, 0, 1, tonumber(redis.call('GET', KEYS[2]) or '0'), epoch, 0, 0, 0}
end
local created = 0
local stored0 = 0
if not u then
	-- A new incarnation: anything left of an older one goes.
	local left = redis.call('LLEN', KEYS[4])
	if left > 0 then
		redis.call('DEL', KEYS[4])
		stored0 = -left
	end
	u = {seq = 0, epoch = userEpoch(epoch, ARGV[6], ARGV[9]), tb = 0, fb = 0, ft = 0, len = 0}
	created = 1
end
redis.call('SADD', KEYS[6], ARGV[4])
local id = redis.call('INCR', KEYS[1]) * tonumber(ARGV[14]) + tonumber(ARGV[13])
local seq = u.seq + 1
local now = tonumber(ARGV[5])
redis.call('RPUSH', KEYS[4], struct.pack('>I8I8I8I8', seq, id, now, u.tb) .. ARGV[1])
local tb = string.format('%.0f', u.tb + size)
if u.len == 0 then
	redis.call('HSET', KEYS[3], 'seq', string.format('%.0f', seq), 'tb', tb, 'epoch', u.epoch,
		'fb', string.format('%.0f', u.tb), 'ft', ARGV[5])
else
	redis.call('HSET', KEYS[3], 'seq', string.format('%.0f', seq), 'tb', tb)
end
redis.call('PEXPIRE', KEYS[3], ARGV[8])
redis.call('PEXPIRE', KEYS[4], ARGV[8])
redis.call('ZADD', KEYS[7], now, ARGV[4])
local stored = incrBy(KEYS[2], 1 - expired + stored0)
if KEYS[8] then
	redis.call('SET', KEYS[8], string.format('%.0f:%.0f:', seq, id) .. u.epoch, 'PX', ARGV[3])
end
return {seq, id, 0, stored, u.epoch, 0, expired, created}
`

// unmarkScript removes users from the pending set, each only if its head is still
// the one given: a user whose head moved on had a message stored since, which the
// tracker that asked may not have seen, and stays marked.
// KEYS: the bucket's pending, then each user's user key (users of that bucket). ARGV: for each user in KEYS order, its
// uid and the head. Returns how many users it removed.
const unmarkScript = `
local removed = 0
for i = 2, #KEYS do
	local head = redis.call('HGET', KEYS[i], 'seq') or '0'
	if head == ARGV[2 * i - 2] then
		removed = removed + redis.call('SREM', KEYS[1], ARGV[2 * i - 3])
	end
end
return removed
`

// ackScript drops a user's messages through a seq, if the ack's epoch is the
// inbox's (an ack counted in a lost incarnation names other messages).
// KEYS: the bucket's stored, the user's user and inbox. ARGV: seq, epoch, now in ms, retention in ms.
// Returns {dropped, stored, expired}.
const ackScript = luaUser + `
local u = loadUser(KEYS[2], KEYS[3], ARGV[3], ARGV[4])
if not u then
	return {0, tonumber(redis.call('GET', KEYS[1]) or '0'), 0}
end
local n = 0
local first = u.seq - u.len + 1
local seq = tonumber(ARGV[1])
if u.epoch == ARGV[2] and u.len > 0 and seq >= first then
	n = math.min(seq, u.seq) - first + 1
	dropFront(u, KEYS[2], KEYS[3], n)
end
return {n, incrBy(KEYS[1], -(n + u.expired)), u.expired}
`

// luaWindowOf defines windowOf(storeEpoch, userKey, inboxKey, ARGV): a user's
// window {epoch, head, oldest} after expiry, and how many messages expired. ARGV
// holds the candidate epoch, now in ms, now in µs, retention in ms and the epoch
// step in µs as its first five values.
const luaWindowOf = luaEpochOf + luaUser + `
local function windowOf(epoch, uk, ik)
	local u = loadUser(uk, ik, ARGV[2], ARGV[4])
	if not u then
		return userEpoch(epoch, ARGV[3], ARGV[5]), 0, 1, 0, nil
	end
	return u.epoch, u.seq, u.seq - u.len + 1, u.expired, u
end
`

// windowScript reports a user's window.
// KEYS: the bucket's epoch and stored, the user's user and inbox. ARGV: candidate
// epoch, now ms, now µs, retention ms, epoch step µs. Returns {epoch, head, oldest,
// expired, stored (-1: unchanged)}.
const windowScript = luaWindowOf + `
local epoch = epochOf(KEYS[1], ARGV[1])
local e, head, oldest, expired = windowOf(epoch, KEYS[3], KEYS[4])
local stored = -1
if expired > 0 then
	stored = redis.call('DECRBY', KEYS[2], expired)
end
return {e, head, oldest, expired, stored}
`

// windowsScript reports many users' windows at once.
// KEYS: the bucket's epoch and stored, then user, inbox for each user (users of
// that bucket). ARGV: as windowScript's.
// Returns {expired, stored (-1: unchanged), epoch1, head1, oldest1, epoch2,
// head2, oldest2, ...}.
const windowsScript = luaWindowOf + `
local epoch = epochOf(KEYS[1], ARGV[1])
local out = {0, -1}
local expired = 0
for i = 3, #KEYS, 2 do
	local e, head, oldest, x = windowOf(epoch, KEYS[i], KEYS[i + 1])
	expired = expired + x
	out[#out + 1] = e
	out[#out + 1] = head
	out[#out + 1] = oldest
end
if expired > 0 then
	out[2] = redis.call('DECRBY', KEYS[2], expired)
end
out[1] = expired
return out
`

// rangeScript returns a user's messages after a seq, and the window.
// KEYS: the bucket's epoch and stored, the user's user and inbox. ARGV: as
// windowScript's, then after, limit (0: all). Returns {epoch, head, oldest,
// {encoded messages}, expired, stored (-1: unchanged)}.
const rangeScript = luaWindowOf + `
local epoch = epochOf(KEYS[1], ARGV[1])
local e, head, first, expired, u = windowOf(epoch, KEYS[3], KEYS[4])
local stored = -1
if expired > 0 then
	stored = redis.call('DECRBY', KEYS[2], expired)
end
local after = tonumber(ARGV[6])
local limit = tonumber(ARGV[7])
local items = {}
if u and after < head and u.len > 0 then
	local start = 0
	if after >= first then
		start = after - first + 1
	end
	local stop = -1
	if limit > 0 and start + limit < u.len then
		stop = start + limit - 1
	end
	items = redis.call('LRANGE', KEYS[4], start, stop)
end
return {e, head, first, items, expired, stored}
`

// sweepScript deletes the inboxes of users whose latest append is at or before a
// cutoff (now - retention: everything in them has expired), with their user keys,
// their pending mark and their entry in the inboxes index. A user appended to
// since the caller listed it is left alone.
// KEYS: the bucket's stored, pending and inboxes, then user, inbox for each user
// (users of that bucket). ARGV: now ms, retention ms, then each user's uid in KEYS
// order. Returns {deleted, expired, stored, inboxes} (the bucket's).
const sweepScript = luaUser + `
local cutoff = tonumber(ARGV[1]) - tonumber(ARGV[2])
local deleted, expired = 0, 0
for i = 4, #KEYS, 2 do
	local uid = ARGV[(i - 4) / 2 + 3]
	local at = redis.call('ZSCORE', KEYS[3], uid)
	if at and tonumber(at) <= cutoff then
		local u = loadUser(KEYS[i], KEYS[i + 1], ARGV[1], ARGV[2])
		if u then
			expired = expired + u.expired
			if u.len > 0 then -- cannot be: its newest message is older than the cutoff
				expired = expired + u.len
			end
		end
		redis.call('DEL', KEYS[i], KEYS[i + 1])
		redis.call('ZREM', KEYS[3], uid)
		redis.call('SREM', KEYS[2], uid)
		deleted = deleted + 1
	end
end
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if expired > 0 then
	stored = redis.call('DECRBY', KEYS[1], expired)
end
return {deleted, expired, stored, redis.call('ZCARD', KEYS[3])}
`
