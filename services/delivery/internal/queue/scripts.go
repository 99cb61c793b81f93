package queue

import "github.com/redis/go-redis/v9"

// Every script works on the keys of one user only, all named
// "<prefix>:{<user>}:…", so they share one Redis Cluster hash slot. KEYS[1]
// is the user's device set and routes the call; the other keys are derived
// from ARGV[1], the user's key base "<prefix>:{<user>}:".
//
// Queue entries are short strings:
//
//	m|<ref>|<message id>   a message whose body is in the hash <base>m:<ref>
//	r|<type>|<message id>  a receipt (300) for a message the device sent
//
// The message hash holds the body once per recipient user, however many of
// the user's devices it goes to, and counts the devices still holding it.

// pumpLua moves entries from a device's queue into its in-flight list while
// the device is attached and its window has room, and appends what it moved
// to the result table out as (device, gateway, connection, attempt, entry,
// body) tuples.
const pumpLua = `
local function pump(base, dev, window, out)
  local conn = redis.call('HMGET', base .. 'c:' .. dev, 'gw', 'conn')
  if not conn[1] then return end
  local q = base .. 'q:' .. dev
  local f = base .. 'f:' .. dev
  local room = window - redis.call('LLEN', f)
  while room > 0 do
    local e = redis.call('LMOVE', q, f, 'LEFT', 'RIGHT')
    if not e then break end
    room = room - 1
    local attempt = redis.call('HINCRBY', base .. 'a:' .. dev, e, 1)
    local body = ''
    if string.sub(e, 1, 2) == 'm|' then
      local ref = string.match(e, '^m|(%d+)|')
      body = redis.call('HGET', base .. 'm:' .. ref, 'body') or ''
    end
    table.insert(out, {dev, conn[1], conn[2], attempt, e, body})
  end
end

-- requeue puts what was in flight back at the head of the queue, in order.
local function requeue(base, dev)
  local q = base .. 'q:' .. dev
  local f = base .. 'f:' .. dev
  while redis.call('LMOVE', f, q, 'RIGHT', 'LEFT') do end
end
`

// enqueueLua stores one message for one recipient user.
//
// ARGV: base, dedupe key suffix, dedupe ttl (s), window, entry id, body,
// sender user, sender device, receipt (0/1), excluded device, copy (0/1).
// Returns {duplicate, devices, deliveries}.
var enqueueScript = redis.NewScript(pumpLua + `
local base, dkey, ttl, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local id, body, suser, sdev = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local receipt, exclude, copy = ARGV[9], ARGV[10], ARGV[11] == '1'
if not redis.call('SET', base .. 'd:' .. dkey, '1', 'NX', 'EX', ttl) then
  return {1, 0, {}}
end
local devs = {}
for _, d in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if d ~= exclude then table.insert(devs, d) end
end
table.sort(devs)
if #devs == 0 and copy then
  return {0, 0, {}}
end
local ref = redis.call('INCR', base .. 'seq')
local entry = 'm|' .. ref .. '|' .. id
local holders = #devs
if holders == 0 then holders = 1 end
redis.call('HSET', base .. 'm:' .. ref, 'body', body, 'suser', suser, 'sdev', sdev,
  'receipt', receipt, 'holders', holders)
local out = {}
if #devs == 0 then
  redis.call('RPUSH', base .. 'nodev', entry)
  return {0, 0, out}
end
for _, d in ipairs(devs) do
  redis.call('RPUSH', base .. 'q:' .. d, entry)
  pump(base, d, window, out)
end
return {0, #devs, out}
`)

// attachLua registers the device, binds it to a connection and pushes its
// queue there, what was in flight first. The first device a user ever
// attaches takes the messages that waited for any device.
//
// ARGV: base, device, gateway, connection, window.
// Returns {queued, deliveries}.
var attachScript = redis.NewScript(pumpLua + `
local base, dev, gw, conn, window = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local q = base .. 'q:' .. dev
if redis.call('SADD', KEYS[1], dev) == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  while redis.call('LMOVE', base .. 'nodev', q, 'LEFT', 'RIGHT') do end
end
redis.call('HSET', base .. 'c:' .. dev, 'gw', gw, 'conn', conn)
requeue(base, dev)
local queued = redis.call('LLEN', q)
local out = {}
pump(base, dev, window, out)
return {queued, out}
`)

// detachLua unbinds the device if conn is still its connection and puts
// what was in flight back at the head of its queue.
//
// ARGV: base, device, connection. Returns 1 when it detached.
var detachScript = redis.NewScript(pumpLua + `
local base, dev, conn = ARGV[1], ARGV[2], ARGV[3]
local c = base .. 'c:' .. dev
if redis.call('HGET', c, 'conn') ~= conn then return 0 end
redis.call('DEL', c)
requeue(base, dev)
return 1
`)

// ackLua removes acked entries of one device and releases what the freed
// window lets through. For messages it drops the device's hold on the body
// and, for the first device of the user to ack a message that asked for a
// receipt, reports the sender to notify.
//
// ARGV: base, device, window, kind ("m" or "r"), ids…
// Returns {acked, receipts {sender user, sender device, id}…, deliveries}.
var ackScript = redis.NewScript(pumpLua + `
local base, dev, window, kind = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local q = base .. 'q:' .. dev
local f = base .. 'f:' .. dev
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local acked, receipts = 0, {}
-- The in-flight list first, then the queue: a device may ack a message
-- that was put back after a reconnect but had already reached it.
for _, list in ipairs({f, q}) do
  for _, e in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local k, mid, id = string.match(e, '^(%a)|([^|]*)|(.*)$')
    if k == kind and wanted[id] then
      wanted[id] = nil
      redis.call('LREM', list, 1, e)
      redis.call('HDEL', base .. 'a:' .. dev, e)
      acked = acked + 1
      if k == 'm' then
        local m = base .. 'm:' .. mid
        if redis.call('HGET', m, 'receipt') == '1' and redis.call('HSETNX', m, 'receipted', '1') == 1 then
          local s = redis.call('HMGET', m, 'suser', 'sdev')
          table.insert(receipts, {s[1], s[2], id})
        end
        if redis.call('HINCRBY', m, 'holders', -1) <= 0 then
          redis.call('DEL', m)
        end
      end
    end
  end
end
local out = {}
pump(base, dev, window, out)
return {acked, receipts, out}
`)

// pushReceiptLua queues a receipt for the device that sent the message.
//
// ARGV: base, device, window, entry. Returns {deliveries}.
var pushReceiptScript = redis.NewScript(pumpLua + `
local base, dev, window, entry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('RPUSH', base .. 'q:' .. dev, entry)
local out = {}
pump(base, dev, window, out)
return {out}
`)
