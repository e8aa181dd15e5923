-- Queue one more attempt of a finished delivery, at the back of its endpoint's queue.
-- Refused while it is still queued, and when its webhook was deleted.
-- KEYS: 1..9 partition, 10 record, 11 the endpoint's failed index, 12..15 endpoint,
--       16 the event's payload (used when ARGV[7] is "1": on one Redis; a cluster keeps it
--       apart, in the event's slot).
-- ARGV: 1 job JSON, 2 now (ms), 3 endpoint id, 4 default cap, 5 retention (s) of a delivery
--       that is not finished, 6 how long the payload is kept (s), 7 "1" when KEYS[16] is used, 8 delivery id
-- Returns 1 queued, 0 still queued, -1 no such delivery, -2 webhook deleted.
local status = redis.call('HGET', KEYS[10], 'status')
if not status then return -1 end
if status ~= 'succeeded' and status ~= 'failed' then return 0 end
local e = endpoint(ARGV[3], 12)
if redis.call('HGET', e.state, 'deleted') == '1' then return -2 end
redis.call('HSET', KEYS[10], 'status', 'pending', 'next_attempt_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('EXPIRE', KEYS[10], tonumber(ARGV[5]))
if ARGV[7] == '1' then
  redis.call('EXPIRE', KEYS[16], tonumber(ARGV[6]), 'GT')
end
redis.call('ZREM', KEYS[11], ARGV[8])
redis.call('LPUSH', e.ready, ARGV[1])
if refresh(e, redis_now(), tonumber(ARGV[4])).joined then signal() end
return 1
