-- Record the outcome of one attempt and, if the worker still holds the job, settle it:
-- schedule the next attempt or finish, then drop it from the in-flight keys. One script, so
-- a job leaves the queue only together with the record of what happened to it.
-- KEYS: 1 inflight, 2 holders, 3 leases, 4 scheduled, 5 record, 6 attempts, 7 failed
-- ARGV: 1 worker, 2 id, 3 now (ms), 4 status, 5 attempt JSON, 6 attempts count,
--       7 next attempt at (ms, "" when none), 8 next job JSON ("" when none),
--       9 retention (s), 10 last error, 11 last status code, 12 response JSON, 13 max attempt records
local retention = tonumber(ARGV[9])
redis.call('RPUSH', KEYS[6], ARGV[5])
redis.call('LTRIM', KEYS[6], -tonumber(ARGV[13]), -1)
redis.call('EXPIRE', KEYS[6], retention)
-- The holder is "<worker>#<attempt>": an ack settles only the attempt it ran, so a late or
-- repeated ack can never settle a later attempt of the same delivery.
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[1] .. '#' .. ARGV[6] then
  return 0
end
redis.call('HSET', KEYS[5], 'status', ARGV[4], 'attempts', ARGV[6], 'updated_at', ARGV[3],
  'next_attempt_at', ARGV[7], 'last_error', ARGV[10], 'last_status_code', ARGV[11],
  'response', ARGV[12])
redis.call('EXPIRE', KEYS[5], retention)
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[7]), ARGV[8])
end
local now = tonumber(ARGV[3])
-- (A redelivered delivery already left the failed set when it was queued again.)
if ARGV[4] == 'failed' then
  redis.call('ZADD', KEYS[7], now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - retention * 1000)
end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
