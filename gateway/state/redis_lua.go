package state

// The Redis store's scripts. Each runs atomically on the server; ARGV[1] is always the
// key prefix, and the prelude below is prepended to every script.
//
// Keys (P is the prefix):
//
//	P epoch            string  last epoch issued, for every gateway (INCR); seeded
//	                           from the server clock in µs when missing
//	P gws              set     gateway ids
//	P gw:<id>          hash    addr link admin epoch exp(ms) drain load(JSON) swept;
//	                           expires `retention` after the lease
//	P lease:<id>       string  the live epoch, with the lease's PX TTL: the lease is
//	                           live exactly while this key holds the epoch
//	P s:<uid>          hash    g (gateway) c (conn) e (epoch): uid's session
//	P idx:<id>:<epoch> set     uids of the sessions under that lease epoch
//	P garbage          set     "<epoch>:<id>" of dead epochs whose idx awaits Sweep
//
// Invariant: uid is in idx:<g>:<e> exactly when s:<uid> holds gateway g and epoch e.
// Register, Unregister, Lookup and the sweep each keep it, so the idx of a dead epoch
// lists all of that epoch's leftover sessions and nothing else, and the idx of a live
// epoch counts its sessions.
//
// Epochs, conns and uids stay strings in Lua (its numbers are doubles, exact only to
// 2^53); the epoch counter is formatted with %d, never tostring (which would give
// "1.7e+15").

const luaPrelude = `
local p = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function gwkey(id) return p .. 'gw:' .. id end
local function leasekey(id) return p .. 'lease:' .. id end
local function idxkey(id, e) return p .. 'idx:' .. id .. ':' .. e end
local function sesskey(uid) return p .. 's:' .. uid end
-- retire queues the session index of a gateway's dead epoch for the sweeper.
local function retire(id, e)
  if redis.call('EXISTS', idxkey(id, e)) == 1 then
    redis.call('SADD', p .. 'garbage', e .. ':' .. id)
  end
end
`

// ARGV: prefix, id, addr, link addr, admin addr, ttl ms, retention ms → epoch.
const luaAcquire = `
local id, ttl, keep = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[7])
local ek = p .. 'epoch'
if redis.call('EXISTS', ek) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', ek, t[1] .. string.format('%06d', tonumber(t[2])))
end
local e = string.format('%d', redis.call('INCR', ek))
local gk = gwkey(id)
local old = redis.call('HGET', gk, 'epoch')
if old then retire(id, old) end
redis.call('DEL', gk)
redis.call('HSET', gk, 'addr', ARGV[3], 'link', ARGV[4], 'admin', ARGV[5], 'epoch', e,
  'exp', string.format('%d', now_ms() + ttl), 'drain', '0', 'load', '', 'swept', '0')
redis.call('PEXPIRE', gk, ttl + keep)
redis.call('SADD', p .. 'gws', id)
redis.call('SET', leasekey(id), e, 'PX', ttl)
return e
`

// ARGV: prefix, id, epoch, ttl ms, load JSON, retention ms → 1, or 0 if the lease is lost.
const luaRenew = `
local id, e, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('GET', leasekey(id)) ~= e then return 0 end
redis.call('PEXPIRE', leasekey(id), ttl)
local gk = gwkey(id)
redis.call('HSET', gk, 'exp', string.format('%d', now_ms() + ttl), 'load', ARGV[5])
redis.call('PEXPIRE', gk, ttl + tonumber(ARGV[6]))
return 1
`

// ARGV: prefix, id, epoch → 1, or 0 if the lease is lost.
const luaRelease = `
local id, e = ARGV[2], ARGV[3]
if redis.call('GET', leasekey(id)) ~= e then return 0 end
redis.call('DEL', leasekey(id))
redis.call('HSET', gwkey(id), 'exp', string.format('%d', now_ms()), 'swept', e)
retire(id, e)
return 1
`

// ARGV: prefix, id, "0"|"1" → 1, or 0 for an unknown gateway.
const luaSetDraining = `
if redis.call('EXISTS', gwkey(ARGV[2])) == 0 then return 0 end
redis.call('HSET', gwkey(ARGV[2]), 'drain', ARGV[3])
return 1
`

// ARGV: prefix → {{id, addr, link, admin, epoch, exp ms, drain, load, pttl}...}
// where pttl is the lease's remaining ms, or -1 if it is not live. Ids whose record
// expired (after the retention) are dropped from the set.
const luaGateways = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', p .. 'gws')) do
  local f = redis.call('HMGET', gwkey(id), 'addr', 'link', 'admin', 'epoch', 'exp', 'drain', 'load')
  if not f[4] then
    redis.call('SREM', p .. 'gws', id)
  else
    local pttl = -1
    if redis.call('GET', leasekey(id)) == f[4] then pttl = redis.call('PTTL', leasekey(id)) end
    out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], pttl}
  end
end
return out
`

// store writes uid's session (g, c, e) over old (HMGET g c e), keeping the index.
const luaStoreSession = `
local function store(uid, old, g, c, e)
  if old[1] and (old[1] ~= g or old[3] ~= e) then
    redis.call('SREM', idxkey(old[1], old[3]), uid)
  end
  redis.call('HSET', sesskey(uid), 'g', g, 'c', c, 'e', e)
  redis.call('SADD', idxkey(g, e), uid)
end
`

// ARGV: prefix, uid, gateway, conn, epoch → {1} or {1, g, c, e} of the session it
// replaced, or {0} if the epoch is not live.
const luaRegister = luaStoreSession + `
local uid, g, c, e = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', leasekey(g)) ~= e then return {0} end
local old = redis.call('HMGET', sesskey(uid), 'g', 'c', 'e')
store(uid, old, g, c, e)
if old[1] then return {1, old[1], old[2], old[3]} end
return {1}
`

// ARGV: prefix, uid, gateway, conn, epoch → {1} stored, {0} the epoch is not live,
// or {2, g, c} when another session (g, c) replaced this one (nothing changes).
const luaReregister = luaStoreSession + `
local uid, g, c, e = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', leasekey(g)) ~= e then return {0} end
local old = redis.call('HMGET', sesskey(uid), 'g', 'c', 'e')
if old[1] and (old[1] ~= g or old[2] ~= c) then return {2, old[1], old[2]} end
store(uid, old, g, c, e)
return {1}
`

// ARGV: prefix, gateway, epoch, then uid, conn pairs → one status per pair: 0
// stored, 1 another session replaced it (nothing changed), 2 the epoch is not live.
// Reregister for a whole batch in one round trip.
const luaReregisterBatch = luaStoreSession + `
local g, e = ARGV[2], ARGV[3]
local live = redis.call('GET', leasekey(g)) == e
local out = {}
for i = 4, #ARGV, 2 do
  local uid, c = ARGV[i], ARGV[i + 1]
  if not live then
    out[#out + 1] = 2
  else
    local old = redis.call('HMGET', sesskey(uid), 'g', 'c', 'e')
    if old[1] and (old[1] ~= g or old[2] ~= c) then
      out[#out + 1] = 1
    else
      store(uid, old, g, c, e)
      out[#out + 1] = 0
    end
  end
end
return out
`

// ARGV: prefix, uid, gateway, conn, epoch → 1 if deleted, 0 if the session differs.
const luaUnregister = `
local uid, g, c, e = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local sk = sesskey(uid)
local cur = redis.call('HMGET', sk, 'g', 'c', 'e')
if cur[1] ~= g or cur[2] ~= c or cur[3] ~= e then return 0 end
redis.call('DEL', sk)
redis.call('SREM', idxkey(g, e), uid)
return 1
`

// ARGV: prefix, uid → {status, gateway, conn, epoch}, status 0 miss, 1 hit, 2
// invalid. An invalid session is deleted (invalidity is permanent).
const luaLookup = `
local uid = ARGV[2]
local sk = sesskey(uid)
local cur = redis.call('HMGET', sk, 'g', 'c', 'e')
if not cur[1] then return {0} end
if redis.call('GET', leasekey(cur[1])) == cur[3] then return {1, cur[1], cur[2], cur[3]} end
redis.call('DEL', sk)
redis.call('SREM', idxkey(cur[1], cur[3]), uid)
return {2, cur[1], cur[2], cur[3]}
`

// ARGV: prefix, batch → {reclaimed, dead indexes left}. It first queues the index of
// every lease that lapsed since the last sweep (O(gateways)), then deletes up to
// batch sessions of queued indexes, so one call never blocks the server for long.
const luaSweep = `
for _, id in ipairs(redis.call('SMEMBERS', p .. 'gws')) do
  local f = redis.call('HMGET', gwkey(id), 'epoch', 'swept')
  if f[1] and f[1] ~= f[2] and redis.call('GET', leasekey(id)) ~= f[1] then
    retire(id, f[1])
    redis.call('HSET', gwkey(id), 'swept', f[1])
  end
end
local budget, n = tonumber(ARGV[2]), 0
while budget > 0 do
  local m = redis.call('SRANDMEMBER', p .. 'garbage')
  if not m then break end
  local e, id = string.match(m, '^(%d+):(.*)$')
  local ik = idxkey(id, e)
  local uids = redis.call('SPOP', ik, budget)
  for _, uid in ipairs(uids) do
    local cur = redis.call('HMGET', sesskey(uid), 'g', 'e')
    if cur[1] == id and cur[2] == e then
      redis.call('DEL', sesskey(uid))
      n = n + 1
    end
  end
  budget = budget - #uids
  if redis.call('EXISTS', ik) == 0 then redis.call('SREM', p .. 'garbage', m) end
end
return {n, redis.call('SCARD', p .. 'garbage')}
`

// ARGV: prefix → the number of sessions under live leases.
const luaSessions = `
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', p .. 'gws')) do
  local e = redis.call('HGET', gwkey(id), 'epoch')
  if e and redis.call('GET', leasekey(id)) == e then n = n + redis.call('SCARD', idxkey(id, e)) end
end
return n
`
