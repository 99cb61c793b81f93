-- session.lua: resume a device's session or open a new one.
--
-- KEYS[1] <p>:p:{<user>}:sess:<device>   STRING  SHA-256 (hex) of the key
-- ARGV[1] SHA-256 (hex) of the key the client presented, or ""
-- ARGV[2] SHA-256 (hex) of a fresh key, stored when nothing is resumed
-- ARGV[3] time to live, ms
--
-- Returns 1 when the presented key is the device's current one (its time
-- to live starts again), 0 when the fresh key replaced whatever was there.
local cur = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 0
