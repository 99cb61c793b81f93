-- connect.lua records a device's connection on a gateway, replacing any
-- older connection of the same device, and reports whether the user came
-- online with it.
--
-- KEYS[1]  <p>:p:{<user>}:devs  HASH device -> gateway US conn US epoch US since_ms
-- KEYS[2]  <p>:p:{<user>}:seen  STRING last seen, Unix ms
-- ARGV[1]  device
-- ARGV[2]  gateway
-- ARGV[3]  connection id
-- ARGV[4]  lease epoch the connection is recorded under
-- ARGV[5]  now, Unix ms
--
-- Returns {came_online (0|1), previous entry of the device or ""}.
local US = "\31"
local prev = redis.call("HGET", KEYS[1], ARGV[1])
local since = ARGV[5]
local online = 0
if prev then
  -- The same connection reported again (after a lost lease) keeps the
  -- time it really connected.
  local g, c, _, s = string.match(prev, "^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$")
  if g == ARGV[2] and c == ARGV[3] and s then
    since = s
  end
elseif redis.call("HLEN", KEYS[1]) == 0 then
  online = 1
  local seen = tonumber(redis.call("GET", KEYS[2]) or "0")
  if tonumber(ARGV[5]) > seen then
    redis.call("SET", KEYS[2], ARGV[5])
  end
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2] .. US .. ARGV[3] .. US .. ARGV[4] .. US .. since)
return {online, prev or ""}
