package state

// The Redis store's scripts. Each runs atomically on one server and touches only
// the keys its caller passes in KEYS, all of one hash slot, so every script runs
// unchanged on a single primary, under Sentinel and on a Redis Cluster (which
// refuses CROSSSLOT scripts and scripts touching undeclared keys).
//
// Keys (P is the prefix, which contains no brace; {gw} is the fixed hash tag of the
// gateway-wide keys, {b} the hash tag of a user bucket: shardtag.Tag(b), and uid's
// bucket is shardtag.Bucket(uid)):
//
//	P{gw}epoch                 string  last epoch issued, for every gateway
//	P{gw}gws                   set     gateway ids
//	P{gw}gw:<id>               hash    addr link admin ws epoch exp(ms) drain load(JSON)
//	                                   swept; expires `retention` after the lease
//	P{gw}lease:<id>            string  the live epoch, with the lease's PX TTL: the
//	                                   lease is live exactly while this key holds it
//	P{gw}garbage               zset    "<epoch>:<id>" of dead epochs whose session
//	                                   indexes Sweep walks, scored by the death (ms)
//	P{b}s:<uid>                hash    g (gateway) c (conn) e (epoch): uid's session
//	P{b}idx:<id>:<epoch>       set     uids of bucket b's sessions under that epoch
//
// Gateway keys are few and each is touched about once a second per gateway, so
// they share one slot (one shard of a Cluster). Sessions are spread by user: a
// user's session and its index entry share the user's bucket tag, hence one slot.
//
// Invariant (per bucket): uid is in P{b}idx:<g>:<e> exactly when P{b}s:<uid> holds
// gateway g and epoch e. The session scripts (store, compare-and-delete, sweep) keep
// it, each in one slot, so the indexes of a live epoch count its sessions and the
// indexes of a dead epoch list all of its leftover sessions and nothing else.
//
// The scripts of the session slot never see a lease (it lives in the gateway slot):
// the Go side reads the lease in a separate command, and redis.go explains why that
// keeps Store's guarantees.
//
// Epochs, conns and uids stay strings in Lua (its numbers are doubles, exact only to
// 2^53); numbers are formatted with %d, never tostring (which would give "1.7e+15").

// luaNow is prepended to the scripts that read the server clock.
const luaNow = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// KEYS: epoch, gw:<id>, lease:<id>, gws, garbage. ARGV: id, addr, link addr, admin
// addr, WebSocket addr ("" for none), ttl ms, retention ms → epoch.
//
// The epoch is the larger of the counter plus one and the server clock in µs, so
// epochs keep increasing across a loss of data, whole (a restart without
// persistence) or partial (a failover to a replica that had not received the last
// writes), as long as fewer than one is issued per µs. The epoch it supersedes, if
// not already queued, is queued as garbage.
const luaAcquire = luaNow + `
local id, ttl, keep = ARGV[1], tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local n = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
local clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
if clock > n then n = clock end
local e = string.format('%d', n)
redis.call('SET', KEYS[1], e)
local old = redis.call('HMGET', KEYS[2], 'epoch', 'swept')
if old[1] and old[1] ~= old[2] then redis.call('ZADD', KEYS[5], now_ms(), old[1] .. ':' .. id) end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'addr', ARGV[2], 'link', ARGV[3], 'admin', ARGV[4], 'ws', ARGV[5], 'epoch', e,
  'exp', string.format('%d', now_ms() + ttl), 'drain', '0', 'load', '', 'swept', '0')
redis.call('PEXPIRE', KEYS[2], ttl + keep)
redis.call('SADD', KEYS[4], id)
redis.call('SET', KEYS[3], e, 'PX', ttl)
return e
`

// KEYS: gw:<id>, lease:<id>. ARGV: epoch, ttl ms, load JSON, retention ms → 1, or 0
// if the lease is lost.
const luaRenew = luaNow + `
local e, ttl = ARGV[1], tonumber(ARGV[2])
if redis.call('GET', KEYS[2]) ~= e then return 0 end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[1], 'exp', string.format('%d', now_ms() + ttl), 'load', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[4]))
return 1
`

// KEYS: gw:<id>, lease:<id>, garbage. ARGV: id, epoch → 1, or 0 if the lease is lost.
const luaRelease = luaNow + `
local id, e = ARGV[1], ARGV[2]
if redis.call('GET', KEYS[2]) ~= e then return 0 end
redis.call('DEL', KEYS[2])
local now = now_ms()
redis.call('HSET', KEYS[1], 'exp', string.format('%d', now), 'swept', e)
redis.call('ZADD', KEYS[3], now, e .. ':' .. id)
return 1
`

// KEYS: gw:<id>. ARGV: "0"|"1" → 1, or 0 for an unknown gateway.
const luaSetDraining = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'drain', ARGV[1])
return 1
`

// KEYS: gws, then gw:<id>, lease:<id> per id. ARGV: the ids →
// {{id, addr, link, admin, epoch, exp ms, drain, load, pttl, ws}...} where pttl is
// the lease's remaining ms, or -1 if it is not live, and ws is nil for a record
// written without one. Ids whose record expired (after the retention) are dropped
// from gws.
const luaGateways = `
local out = {}
for i, id in ipairs(ARGV) do
  local gk, lk = KEYS[2 * i], KEYS[2 * i + 1]
  local f = redis.call('HMGET', gk, 'addr', 'link', 'admin', 'epoch', 'exp', 'drain', 'load', 'ws')
  if not f[4] then
    redis.call('SREM', KEYS[1], id)
  else
    local pttl = -1
    if redis.call('GET', lk) == f[4] then pttl = redis.call('PTTL', lk) end
    out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], pttl, f[8]}
  end
end
return out
`

// KEYS: garbage, then gw:<id>, lease:<id> per id. ARGV: the ids → {now ms, member,
// score, member, score...}: the garbage queue after queueing every epoch that lapsed
// unrenewed since the last scan (O(gateways)).
const luaSweepScan = luaNow + `
local now = now_ms()
for i, id in ipairs(ARGV) do
  local gk, lk = KEYS[2 * i], KEYS[2 * i + 1]
  local f = redis.call('HMGET', gk, 'epoch', 'swept')
  if f[1] and f[1] ~= f[2] and redis.call('GET', lk) ~= f[1] then
    redis.call('ZADD', KEYS[1], now, f[1] .. ':' .. id)
    redis.call('HSET', gk, 'swept', f[1])
  end
end
local out = {string.format('%d', now)}
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do out[#out + 1] = v end
return out
`

// KEYS: garbage. ARGV: member, grace ms → 1 if the member was queued at least grace
// ago and is now dropped, else 0.
const luaGarbageDone = luaNow + `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) + tonumber(ARGV[2]) <= now_ms() then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`

// KEYS: idx:<g>:<e> of one bucket, then per session s:<uid> and the index of the
// session the caller expects stored (idx:<og>:<oe>, or the first key if none); all
// of the bucket's slot. ARGV: g, e, "1" to store only over an absent session or one
// of the same gateway and conn (Reregister) else "0", then per session uid, conn,
// and the expected stored gateway, conn and epoch ("" if none) → one status per
// session: 0 stored, 1 another session is stored (nothing changed; only with "1"),
// 3 the stored session is not the expected one (nothing changed: read it again).
//
// Compare-and-set on the expected session is what lets the caller name the old
// index in KEYS: it read the session before, and a change since is refused.
const luaStore = `
local g, e, only = ARGV[1], ARGV[2], ARGV[3] == '1'
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local sk, ok = KEYS[2 * i], KEYS[2 * i + 1]
  local a = 3 + (i - 1) * 5
  local uid, c, og, oc, oe = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local cur = redis.call('HMGET', sk, 'g', 'c', 'e')
  if (cur[1] or '') ~= og or (cur[2] or '') ~= oc or (cur[3] or '') ~= oe then
    out[i] = 3
  elseif only and og ~= '' and (og ~= g or oc ~= c) then
    out[i] = 1
  else
    if og ~= '' and (og ~= g or oe ~= e) then redis.call('SREM', ok, uid) end
    redis.call('HSET', sk, 'g', g, 'c', c, 'e', e)
    redis.call('SADD', KEYS[1], uid)
    out[i] = 0
  end
end
return out
`

// KEYS: s:<uid>, idx:<g>:<e> of its bucket. ARGV: uid, g, conn, e → 1 if the stored
// session was exactly (g, conn, e) and is now deleted, else 0.
const luaCompareDelete = `
local cur = redis.call('HMGET', KEYS[1], 'g', 'c', 'e')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] or cur[3] ~= ARGV[4] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`

// KEYS: idx:<g>:<e> of one bucket, then s:<uid> per uid. ARGV: g, e, then the uids
// (members of that index) → the number of sessions deleted. Each uid leaves the
// index; its session is deleted if it still holds (g, e).
const luaSweepBucket = `
local g, e, n = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local sk = KEYS[i - 1]
  redis.call('SREM', KEYS[1], ARGV[i])
  local cur = redis.call('HMGET', sk, 'g', 'e')
  if cur[1] == g and cur[2] == e then
    redis.call('DEL', sk)
    n = n + 1
  end
end
return n
`
