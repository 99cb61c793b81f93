-- disconnect.lua removes a device's connection if it is still the one
-- recorded, so a late disconnect of an old connection never removes a newer
-- one, and reports whether the user went offline with it.
--
-- KEYS[1]  <p>:p:{<user>}:devs  HASH device -> gateway US conn US epoch US since_ms
-- KEYS[2]  <p>:p:{<user>}:seen  STRING last seen, Unix ms
-- ARGV[1]  device
-- ARGV[2]  gateway
-- ARGV[3]  connection id
-- ARGV[4]  lease epoch the entry must have, or "" for any
-- ARGV[5]  now, Unix ms
--
-- Returns {status, went_offline (0|1), epoch of the removed entry or ""}.
-- status: 0 not recorded (gone, or replaced by another connection);
--         1 removed;
--         2 kept: the same connection is recorded under another epoch, so
--           its gateway came back and connected it again; it is live.
local cur = redis.call("HGET", KEYS[1], ARGV[1])
if not cur then
  return {0, 0, ""}
end
local g, c, e = string.match(cur, "^([^\31]*)\31([^\31]*)\31([^\31]*)\31")
if g ~= ARGV[2] or c ~= ARGV[3] then
  return {0, 0, ""}
end
if ARGV[4] ~= "" and e ~= ARGV[4] then
  return {2, 0, ""}
end
redis.call("HDEL", KEYS[1], ARGV[1])
if redis.call("HLEN", KEYS[1]) > 0 then
  return {1, 0, e}
end
-- Last seen only moves forward, whatever the clocks of the instances say.
local seen = tonumber(redis.call("GET", KEYS[2]) or "0")
if tonumber(ARGV[5]) > seen then
  redis.call("SET", KEYS[2], ARGV[5])
end
return {1, 1, e}
