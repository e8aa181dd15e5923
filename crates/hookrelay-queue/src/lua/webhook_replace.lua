-- Replace a webhook, possibly under a new name, if nobody changed it since it was read.
-- KEYS: 1 project's webhooks hash, 2 version key.
-- ARGV: 1 current name, 2 JSON as read, 3 new name, 4 new JSON, 5 new version token
-- Returns 1 replaced, 0 new name taken, -1 no such webhook, -2 changed since read.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return -1 end
if current ~= ARGV[2] then return -2 end
if ARGV[3] ~= ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5])
return 1
