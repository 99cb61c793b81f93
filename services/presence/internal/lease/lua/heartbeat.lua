-- heartbeat.lua renews a gateway's lease, or starts a new one with a new
-- epoch when the gateway has none (first start, or swept after expiring).
--
-- KEYS[1]  <p>:p:{gateways}:leases  ZSET gateway -> lease expiry, Unix ms
-- KEYS[2]  <p>:p:{gateways}:epochs  HASH gateway -> current epoch
-- KEYS[3]  <p>:p:{gateways}:seq     STRING last epoch handed out
-- ARGV[1]  gateway
-- ARGV[2]  new lease expiry, Unix ms
--
-- Returns {known (0|1), epoch}. known is 1 when the lease still existed,
-- even if past its expiry: no sweep has claimed it, so nothing was lost.
local e = redis.call("HGET", KEYS[2], ARGV[1])
if e and redis.call("ZSCORE", KEYS[1], ARGV[1]) then
  redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
  return {1, tonumber(e)}
end
e = redis.call("INCR", KEYS[3])
redis.call("HSET", KEYS[2], ARGV[1], e)
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
return {0, e}
