package queue

import "github.com/redis/go-redis/v9"

// Every script works on the keys of one shard, all named "<prefix>:{<n>}:…"
// so they share one Redis Cluster hash slot. KEYS[1] is a key of the shard
// and routes the call; the other keys are derived from ARGV[1], the shard's
// key base "<prefix>:{<n>}:". doc.go lists the keys.

// commonLua holds the helpers the scripts share. Names: B is the shard base,
// u a user, d a device, e a queue entry.
const commonLua = `
local SEP = '\0'

local function qkey(B, u, d) return B .. 'q:' .. u .. ':' .. d end
local function fkey(B, u, d) return B .. 'f:' .. u .. ':' .. d end
local function akey(B, u, d) return B .. 'a:' .. u .. ':' .. d end
local function ckey(B, u, d) return B .. 'c:' .. u .. ':' .. d end
local function devskey(B, u) return B .. 'devs:' .. u end
local function member(u, d, e) return u .. SEP .. d .. SEP .. e end

-- deadline is when an entry pushed for the attempt-th time is pushed
-- again: the visibility timeout doubles with each attempt up to 64 times
-- its base, so a long outage between delivery and the gateways (NATS down)
-- does not use up an entry's attempts within minutes.
local function deadline(now, visibility, attempt)
  return now + visibility * 2 ^ (math.min(attempt, 7) - 1)
end

-- ref returns the message ref of an entry "m|<ref>|<id>", or nil.
local function ref(e)
  return string.match(e, '^m|(%d+)|')
end

-- body returns what a delivery or dead letter carries for an entry of
-- device d of user u: a message's body; for a receipt, the trace context it
-- was queued with (its mark's value when not '1'), or ''.
local function body(B, u, d, e)
  local r = ref(e)
  if r then return redis.call('HGET', B .. 'm:' .. r, 'body') or '' end
  local tp = redis.call('GET', B .. 'rc:' .. u .. ':' .. d .. ':' .. e)
  if tp and tp ~= '1' then return tp end
  return ''
end

-- release drops one device's hold on a message body, deleting it with the
-- last one.
local function release(B, e)
  local r = ref(e)
  if not r then return end
  local m = B .. 'm:' .. r
  if redis.call('HINCRBY', m, 'holders', -1) <= 0 then
    local u = redis.call('HGET', m, 'user')
    redis.call('DEL', m)
    if u then redis.call('ZREM', B .. 'late', u .. SEP .. r) end
  end
end

-- forget removes an entry's timers.
local function forget(B, u, d, e)
  local mb = member(u, d, e)
  redis.call('ZREM', B .. 'due', mb)
  redis.call('ZREM', B .. 'exp', mb)
  redis.call('HDEL', akey(B, u, d), e)
end

-- bury moves an entry that left its queue without an ack to the dead-letter
-- list and appends it to out as {user, device, reason, attempts, entry, body}.
local function bury(B, u, d, e, reason, out)
  local attempts = tonumber(redis.call('HGET', akey(B, u, d), e) or '0')
  local b = body(B, u, d, e)
  redis.call('RPUSH', B .. 'dead', table.concat({reason, u, d, attempts, e, b}, SEP))
  forget(B, u, d, e)
  release(B, e)
  table.insert(out, {u, d, reason, attempts, e, b})
end

-- ready queues the device for its shard's owner to push, once.
local function ready(B, u, d)
  if redis.call('EXISTS', ckey(B, u, d)) == 1 and redis.call('SADD', B .. 'readyset', u .. SEP .. d) == 1 then
    redis.call('RPUSH', B .. 'ready', u .. SEP .. d)
  end
end

-- requeue puts what was in flight back at the head of the queue, in order.
local function requeue(B, u, d)
  local q, f = qkey(B, u, d), fkey(B, u, d)
  while true do
    local e = redis.call('LMOVE', f, q, 'RIGHT', 'LEFT')
    if not e then break end
    redis.call('ZREM', B .. 'due', member(u, d, e))
  end
end

-- push moves entries from the device's queue into its in-flight list while
-- the device is attached and its window has room, appending to out
-- {user, device, gateway, connection, attempt, entry, body}; entries
-- delivered maxAttempts times already are buried instead.
local function push(B, u, d, now, window, visibility, maxAttempts, out, dead)
  local conn = redis.call('HMGET', ckey(B, u, d), 'gw', 'conn')
  if not conn[1] then return end
  local q, f = qkey(B, u, d), fkey(B, u, d)
  local room = window - redis.call('LLEN', f)
  while room > 0 do
    local e = redis.call('LMOVE', q, f, 'LEFT', 'RIGHT')
    if not e then break end
    local attempt = redis.call('HINCRBY', akey(B, u, d), e, 1)
    if attempt > maxAttempts then
      redis.call('HINCRBY', akey(B, u, d), e, -1)
      redis.call('LREM', f, -1, e)
      bury(B, u, d, e, 'attempts', dead)
    else
      room = room - 1
      redis.call('ZADD', B .. 'due', deadline(now, visibility, attempt), member(u, d, e))
      table.insert(out, {u, d, conn[1], conn[2], attempt, e, body(B, u, d, e)})
    end
  end
end

-- owned fails the script unless token holds the shard's lease.
local function owned(B, token)
  if redis.call('GET', B .. 'owner') ~= token then
    return redis.error_reply('NOTOWNER shard lease not held')
  end
end
`

// enqueueLua stores one message for one recipient user:
// enqueue(B, u, dkey, ttl, id, body, suser, sdev, receipt, exclude, copy,
// now, maxLen, maxAge, late, tp, dead) returns duplicate (0/1) and devices.
// tp, the message's trace context, is kept beside the body (field "tp")
// when there is one, for the ack to join the message's trace.
const enqueueLua = `
local function enqueue(B, u, dkey, ttl, id, b, suser, sdev, receipt, exclude, copy, now, maxLen, maxAge, late, tp, dead)
  if not redis.call('SET', B .. 'd:' .. u .. ':' .. dkey, '1', 'NX', 'EX', ttl) then
    return 1, 0
  end
  local devs = {}
  for _, d in ipairs(redis.call('SMEMBERS', devskey(B, u))) do
    if d ~= exclude then table.insert(devs, d) end
  end
  table.sort(devs)
  if #devs == 0 and copy then
    return 0, 0
  end
  local r = redis.call('INCR', B .. 'seq')
  local e = 'm|' .. r .. '|' .. id
  redis.call('HSET', B .. 'm:' .. r, 'body', b, 'user', u, 'suser', suser, 'sdev', sdev,
    'receipt', receipt, 'holders', math.max(#devs, 1), 'queued', now)
  if tp ~= '' then redis.call('HSET', B .. 'm:' .. r, 'tp', tp) end
  if late > 0 and not copy then
    redis.call('ZADD', B .. 'late', now + late, u .. SEP .. r)
  end
  if #devs == 0 then
    -- Nobody to deliver to yet: the user's first device takes it. The
    -- length limit holds here too; age is counted once a device has it.
    local nd = B .. 'nodev:' .. u
    redis.call('RPUSH', nd, e)
    while maxLen > 0 and redis.call('LLEN', nd) > maxLen do
      bury(B, u, '', redis.call('LPOP', nd), 'length', dead)
    end
    return 0, 0
  end
  for _, d in ipairs(devs) do
    local q = qkey(B, u, d)
    redis.call('RPUSH', q, e)
    if maxAge > 0 then
      redis.call('ZADD', B .. 'exp', now + maxAge, member(u, d, e))
    end
    while maxLen > 0 and redis.call('LLEN', q) > maxLen do
      bury(B, u, d, redis.call('LPOP', q), 'length', dead)
    end
    ready(B, u, d)
  end
  return 0, #devs
end
`

// enqueueScript stores one message for one recipient user.
//
// ARGV: B, user, dedupe key, dedupe ttl (s), message id, body, sender user,
// sender device, receipt (0/1), excluded device, copy (0/1), now (ms),
// max queue length (0: none), max age (ms, 0: none), undelivered delay
// (ms, 0: none), trace context (empty for none). Returns {duplicate, devices,
// dead letters}.
var enqueueScript = redis.NewScript(commonLua + enqueueLua + `
local dead = {}
local dup, n = enqueue(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], ARGV[10], ARGV[11] == '1', tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), ARGV[16], dead)
return {dup, n, dead}
`)

// enqueueMembersScript stores one room message for the members of the room
// that live in this shard. The sender's own other devices get a copy; every
// other member gets it with the room's receipt flag.
//
// ARGV: B, dedupe key, dedupe ttl (s), message id, body, sender user,
// sender device, receipt (0/1), now (ms), max queue length, max age (ms),
// undelivered delay (ms), trace context (empty for none), members….
// Returns {members that were new, devices, dead letters}.
var enqueueMembersScript = redis.NewScript(commonLua + enqueueLua + `
local B, dkey, ttl, id, b, suser, sdev, receipt = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local now, maxLen, maxAge, late, tp = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local dead, fresh, devices = {}, 0, 0
for i = 14, #ARGV do
  local u = ARGV[i]
  local dup, n
  if u == suser then
    dup, n = enqueue(B, u, dkey, ttl, id, b, suser, sdev, '0', sdev, true, now, maxLen, maxAge, late, tp, dead)
  else
    dup, n = enqueue(B, u, dkey, ttl, id, b, suser, sdev, receipt, '', false, now, maxLen, maxAge, late, tp, dead)
  end
  if dup == 0 then fresh = fresh + 1 end
  devices = devices + n
end
return {fresh, devices, dead}
`)

// attachScript registers the device, binds it to a connection and queues it
// for a push, what was in flight on an earlier connection first. The first
// device a user ever attaches takes the messages that waited for any device.
//
// ARGV: B, user, device, gateway, connection, now (ms), max age (ms).
// Returns the number of entries waiting for the device.
var attachScript = redis.NewScript(commonLua + `
local B, u, d, gw, conn, now, maxAge = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local q = qkey(B, u, d)
local devs = devskey(B, u)
if redis.call('SADD', devs, d) == 1 and redis.call('SCARD', devs) == 1 then
  while true do
    local e = redis.call('LMOVE', B .. 'nodev:' .. u, q, 'LEFT', 'RIGHT')
    if not e then break end
    if maxAge > 0 then
      redis.call('ZADD', B .. 'exp', now + maxAge, member(u, d, e))
    end
  end
end
redis.call('HSET', ckey(B, u, d), 'gw', gw, 'conn', conn)
requeue(B, u, d)
ready(B, u, d)
return redis.call('LLEN', q)
`)

// detachScript unbinds the device if conn is still its connection and puts
// what was in flight back at the head of its queue.
//
// ARGV: B, user, device, connection. Returns 1 when it detached.
var detachScript = redis.NewScript(commonLua + `
local B, u, d, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c = ckey(B, u, d)
if redis.call('HGET', c, 'conn') ~= conn then return 0 end
redis.call('DEL', c)
requeue(B, u, d)
return 1
`)

// ackScript removes acked entries of one device and queues the device for
// a push into the room that freed. For messages it drops the device's hold
// on the body and, for the first device of the user to ack a message,
// reports the sender to send a 300 to (when one was asked for) and, when
// the message had been reported undelivered, that it is delivered now.
//
// A receipt owed is also recorded in the shard's outbox, atomically with
// the ack, and stays there until it is queued for the sender: the caller
// does that at once, and the shard's owner retries what a crash left.
//
// For each acked message it also returns what the caller observes: the
// trace context stored with it, and the visibility deadline and attempt of
// its last push (the push time follows from them), empty where there is none.
//
// ARGV: B, user, device, kind ("m" or "r"), now (ms), ids…
// Returns {acked, receipts {sender user, sender device, id}…,
// delivered {sender user, sender device, id}…,
// messages {id, trace context, deadline (ms), attempt}…}.
var ackScript = redis.NewScript(commonLua + `
local B, u, d, kind, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local wanted = {}
for i = 6, #ARGV do wanted[ARGV[i]] = true end
local acked, receipts, delivered, msgs = 0, {}, {}, {}
-- The in-flight list first, then the queue: a device may ack a message
-- that was put back after a reconnect but had already reached it.
for _, list in ipairs({fkey(B, u, d), qkey(B, u, d)}) do
  for _, e in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local k, mid, id = string.match(e, '^(%a)|([^|]*)|(.*)$')
    if k == kind and wanted[id] then
      wanted[id] = nil
      local due, attempt
      if k == 'm' then
        due = redis.call('ZSCORE', B .. 'due', member(u, d, e))
        attempt = redis.call('HGET', akey(B, u, d), e)
      end
      redis.call('LREM', list, 1, e)
      forget(B, u, d, e)
      acked = acked + 1
      if k == 'm' then
        local m = B .. 'm:' .. mid
        table.insert(msgs, {id, redis.call('HGET', m, 'tp') or '', due or '', attempt or ''})
        if redis.call('HSETNX', m, 'acked', '1') == 1 then
          local s = redis.call('HMGET', m, 'suser', 'sdev', 'receipt', 'reported')
          if s[3] == '1' then
            table.insert(receipts, {s[1], s[2], id})
            redis.call('ZADD', B .. 'outbox', now, s[1] .. SEP .. s[2] .. SEP .. id)
          end
          if s[4] == '1' then table.insert(delivered, {s[1], s[2], id}) end
          redis.call('ZREM', B .. 'late', u .. SEP .. mid)
        end
        release(B, e)
      end
    end
  end
end
if acked > 0 then ready(B, u, d) end
return {acked, receipts, delivered, msgs}
`)

// pushReceiptScript queues a receipt for the device that sent the message,
// once: a retry from the outbox finds its mark and queues nothing.
//
// The mark's value is the receipt's trace context ('1' when there is
// none), which its push sends along.
//
// ARGV: B, user, device, entry, now (ms), max age (ms), mark ttl (s),
// trace context (empty for none). Returns 1 when it queued the receipt.
var pushReceiptScript = redis.NewScript(commonLua + `
local B, u, d, e, now, maxAge = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local mark = ARGV[8]
if not mark or mark == '' then mark = '1' end
if not redis.call('SET', B .. 'rc:' .. u .. ':' .. d .. ':' .. e, mark, 'NX', 'EX', ARGV[7]) then
  return 0
end
redis.call('RPUSH', qkey(B, u, d), e)
if maxAge > 0 then
  redis.call('ZADD', B .. 'exp', now + maxAge, member(u, d, e))
end
ready(B, u, d)
return 1
`)

// drainScript is run by the shard's owner: it pushes every device in the
// wake list and up to max more from the ready list.
//
// ARGV: B, owner token, now (ms), window, visibility (ms), max attempts,
// max devices. Returns {deliveries, dead letters}.
var drainScript = redis.NewScript(commonLua + `
local B, token, now, window, visibility, maxAttempts, max =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local err = owned(B, token)
if err then return err end
local items = redis.call('LRANGE', B .. 'wake', 0, -1)
redis.call('DEL', B .. 'wake')
for _, it in ipairs(redis.call('LPOP', B .. 'ready', max) or {}) do table.insert(items, it) end
local out, dead = {}, {}
for _, it in ipairs(items) do
  redis.call('SREM', B .. 'readyset', it)
  local u, d = string.match(it, '^(.*)%z(.*)$')
  if u then push(B, u, d, now, window, visibility, maxAttempts, out, dead) end
end
return {out, dead}
`)

// expireScript is run by the shard's owner on a timer. It delivers again
// what stayed in flight past the visibility timeout (burying it after max
// attempts), buries what is older than the maximum age, and reports
// messages no device acked within the undelivered delay.
//
// ARGV: B, owner token, now (ms), window, visibility (ms), max attempts,
// max items. Returns {deliveries, dead letters, undelivered
// {user, sender user, sender device, body, queued}…}.
var expireScript = redis.NewScript(commonLua + `
local B, token, now, window, visibility, maxAttempts, max =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local err = owned(B, token)
if err then return err end
local out, dead, late = {}, {}, {}
local freed = {}

for _, mb in ipairs(redis.call('ZRANGEBYSCORE', B .. 'due', '-inf', now, 'LIMIT', 0, max)) do
  local u, d, e = string.match(mb, '^([^%z]*)%z([^%z]*)%z(.*)$')
  local f = fkey(B, u, d)
  local conn = redis.call('HMGET', ckey(B, u, d), 'gw', 'conn')
  if not redis.call('LPOS', f, e) or not conn[1] then
    redis.call('ZREM', B .. 'due', mb)
  else
    local attempt = tonumber(redis.call('HGET', akey(B, u, d), e) or '0')
    if attempt >= maxAttempts then
      redis.call('LREM', f, 1, e)
      bury(B, u, d, e, 'attempts', dead)
      freed[u .. SEP .. d] = {u, d}
    else
      attempt = redis.call('HINCRBY', akey(B, u, d), e, 1)
      redis.call('ZADD', B .. 'due', deadline(now, visibility, attempt), mb)
      table.insert(out, {u, d, conn[1], conn[2], attempt, e, body(B, u, d, e)})
    end
  end
end

for _, mb in ipairs(redis.call('ZRANGEBYSCORE', B .. 'exp', '-inf', now, 'LIMIT', 0, max)) do
  local u, d, e = string.match(mb, '^([^%z]*)%z([^%z]*)%z(.*)$')
  local removed = redis.call('LREM', qkey(B, u, d), 1, e)
  if removed == 0 then
    removed = redis.call('LREM', fkey(B, u, d), 1, e)
    if removed > 0 then freed[u .. SEP .. d] = {u, d} end
  end
  if removed > 0 then
    bury(B, u, d, e, 'age', dead)
  else
    redis.call('ZREM', B .. 'exp', mb)
  end
end

for _, lm in ipairs(redis.call('ZRANGEBYSCORE', B .. 'late', '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', B .. 'late', lm)
  local u, r = string.match(lm, '^([^%z]*)%z(.*)$')
  local m = B .. 'm:' .. r
  local s = redis.call('HMGET', m, 'suser', 'sdev', 'body', 'queued', 'acked')
  if s[3] and not s[5] then
    redis.call('HSET', m, 'reported', '1')
    table.insert(late, {u, s[1], s[2], s[3], s[4]})
  end
end

for _, ud in pairs(freed) do
  push(B, ud[1], ud[2], now, window, visibility, maxAttempts, out, dead)
end
return {out, dead, late}
`)

// acquireScript takes or renews the shard's lease for token.
//
// ARGV: B, token, lease (ms). Returns 1 when token holds the lease.
var acquireScript = redis.NewScript(`
local k = ARGV[1] .. 'owner'
local cur = redis.call('GET', k)
if cur == ARGV[2] then
  redis.call('PEXPIRE', k, ARGV[3])
  return 1
end
if cur then return 0 end
redis.call('SET', k, ARGV[2], 'PX', ARGV[3])
return 1
`)

// releaseScript gives the shard's lease up if token holds it, marking the
// handover clean: everything its owner pushed was published.
//
// ARGV: B, token. Returns 1 when it was held.
var releaseScript = redis.NewScript(`
local k = ARGV[1] .. 'owner'
if redis.call('GET', k) == ARGV[2] then
  redis.call('DEL', k)
  redis.call('SET', ARGV[1] .. 'clean', '1')
  return 1
end
return 0
`)

// takeoverScript is run by a new owner before anything else. Unless the
// previous owner released the shard cleanly, what it pushed may not have
// been published, so every in-flight entry of an attached device is pushed
// again, in order, before newer entries can overtake it.
//
// ARGV: B, owner token, now (ms), visibility (ms). Returns {deliveries}.
var takeoverScript = redis.NewScript(commonLua + `
local B, token, now, visibility = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local err = owned(B, token)
if err then return err end
if redis.call('DEL', B .. 'clean') == 1 then return {{}} end
local out, seen = {}, {}
for _, mb in ipairs(redis.call('ZRANGE', B .. 'due', 0, -1)) do
  local u, d = string.match(mb, '^([^%z]*)%z([^%z]*)%z')
  if u and not seen[u .. SEP .. d] then
    seen[u .. SEP .. d] = true
    local conn = redis.call('HMGET', ckey(B, u, d), 'gw', 'conn')
    if conn[1] then
      for _, e in ipairs(redis.call('LRANGE', fkey(B, u, d), 0, -1)) do
        local attempt = redis.call('HINCRBY', akey(B, u, d), e, 1)
        redis.call('ZADD', B .. 'due', deadline(now, visibility, attempt), member(u, d, e))
        table.insert(out, {u, d, conn[1], conn[2], attempt, e, body(B, u, d, e)})
      end
    end
  end
end
return {out}
`)

// outboxScript lists receipts owed for longer than the grace period, for
// the shard's owner to queue again.
//
// ARGV: B, owner token, before (ms), max. Returns {sender user, sender
// device, id}….
var outboxScript = redis.NewScript(commonLua + `
local err = owned(ARGV[1], ARGV[2])
if err then return err end
local out = {}
for _, mb in ipairs(redis.call('ZRANGEBYSCORE', ARGV[1] .. 'outbox', '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))) do
  local su, sd, id = string.match(mb, '^([^%z]*)%z([^%z]*)%z(.*)$')
  table.insert(out, {su, sd, id})
end
return out
`)

// attachedScript lists the user's devices attached now, but the excluded
// one: {device, gateway, connection}….
//
// ARGV: B, user, excluded device.
var attachedScript = redis.NewScript(commonLua + `
local B, u, exclude = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for _, d in ipairs(redis.call('SMEMBERS', devskey(B, u))) do
  if d ~= exclude then
    local conn = redis.call('HMGET', ckey(B, u, d), 'gw', 'conn')
    if conn[1] then table.insert(out, {d, conn[1], conn[2]}) end
  end
end
return out
`)
