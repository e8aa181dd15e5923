-- Queue one more attempt of a finished delivery. Refused while it is still queued.
-- KEYS: 1 record, 2 ready, 3 failed. ARGV: 1 job JSON, 2 now (ms)
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'succeeded' and status ~= 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'next_attempt_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
