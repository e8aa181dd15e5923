-- Move a claimed job that this build cannot run to the dead list, with the reason, and mark
-- its delivery record (if there is one) failed with that reason.
-- KEYS: 1 inflight, 2 holders, 3 leases, 4 dead, 5 record
-- ARGV: 1 worker, 2 id, 3 reason, 4 now (ms)
local mine = ARGV[1] .. '#'
local holder = redis.call('HGET', KEYS[2], ARGV[2])
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not holder or string.sub(holder, 1, #mine) ~= mine or not raw then
  return 0
end
redis.call('LPUSH', KEYS[4], cjson.encode({reason = ARGV[3], at = tonumber(ARGV[4]), id = ARGV[2], raw = raw}))
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HSET', KEYS[5], 'status', 'failed', 'last_error', 'not runnable: ' .. ARGV[3],
    'updated_at', ARGV[4], 'next_attempt_at', '')
end
return 1
