-- Move a claimed job that this build cannot run to the dead list, with the reason.
-- KEYS: 1 inflight, 2 holders, 3 leases, 4 dead. ARGV: 1 worker, 2 id, 3 reason, 4 now (ms)
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[1] or not raw then
  return 0
end
redis.call('LPUSH', KEYS[4], cjson.encode({reason = ARGV[3], at = tonumber(ARGV[4]), id = ARGV[2], raw = raw}))
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
