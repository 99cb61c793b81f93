-- claim.lua hands expired gateways to one sweeper. Atomicity is the point:
-- every presence instance sweeps, and a gateway must be swept by one.
-- Sweeps whose claim deadline passed (their sweeper died or released them)
-- are handed out again first; they have waited longest.
--
-- KEYS[1]  <p>:p:{gateways}:leases  ZSET gateway -> lease expiry, Unix ms
-- KEYS[2]  <p>:p:{gateways}:epochs  HASH gateway -> current epoch
-- KEYS[3]  <p>:p:{gateways}:sweeps  ZSET gateway US epoch -> claim deadline, Unix ms
-- ARGV[1]  now, Unix ms
-- ARGV[2]  claim deadline, Unix ms
-- ARGV[3]  most gateways to claim
--
-- Returns a flat list: gateway, epoch, gateway, epoch, ...
local out = {}
local limit = tonumber(ARGV[3])
local stale = redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", ARGV[1], "LIMIT", 0, limit)
for _, m in ipairs(stale) do
  local g, e = string.match(m, "^(.*)\31([^\31]*)$")
  if g then
    redis.call("ZADD", KEYS[3], ARGV[2], m)
    out[#out + 1] = g
    out[#out + 1] = e
  else
    redis.call("ZREM", KEYS[3], m)
  end
end
limit = limit - #stale
if limit <= 0 then
  return out
end
local expired = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, limit)
for _, g in ipairs(expired) do
  local e = redis.call("HGET", KEYS[2], g) or "0"
  redis.call("ZREM", KEYS[1], g)
  redis.call("HDEL", KEYS[2], g)
  redis.call("ZADD", KEYS[3], ARGV[2], g .. "\31" .. e)
  out[#out + 1] = g
  out[#out + 1] = e
end
return out
