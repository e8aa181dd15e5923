-- Move a claimed job that this build cannot run to the dead list, with the reason, and mark
-- its delivery record (if there is one) failed with that reason: recoverable like any
-- other failed delivery.
-- KEYS: 1..9 partition, 10 record (used when ARGV[7] is "1"), 11 the endpoint's failed
--       index, 12..15 endpoint.
-- ARGV: 1 worker, 2 id, 3 reason, 4 endpoint id, 5 default cap, 6 retention (s) of a
--       failed delivery, 7 "1" when KEYS[10] is the job's record (not when its id names
--       another partition, whose slot this script cannot reach)
local now = redis_now()
local mine = ARGV[1] .. '#'
local id = ARGV[2]
local e = endpoint(ARGV[4], 12)
local holder = redis.call('HGET', KEYS[HOLDERS], id)
local raw = redis.call('HGET', KEYS[INFLIGHT], id)
if not held_by(holder, mine) or not raw then
  return 0
end
redis.call('LPUSH', KEYS[DEAD], cjson.encode({reason = ARGV[3], at = now, id = id, raw = raw}))
drop_inflight(e, id)
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[10]) == 1 then
  redis.call('HSET', KEYS[10], 'status', 'failed', 'last_error', 'not runnable: ' .. ARGV[3],
    'updated_at', now, 'next_attempt_at', '')
  redis.call('EXPIRE', KEYS[10], tonumber(ARGV[6]))
  redis.call('ZADD', KEYS[11], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now - tonumber(ARGV[6]) * 1000)
  redis.call('EXPIRE', KEYS[11], tonumber(ARGV[6]))
end
refresh(e, now, tonumber(ARGV[5]))
return 1
