-- Move jobs of the pre-endpoint layout into their endpoints' queues: ready jobs to the back
-- (oldest first), scheduled retries with their due time, and in-flight jobs whose lease
-- expired to the front. In-flight jobs still leased are left to their (older) worker, whose
-- ack settles them in the old keys; a later pass moves what it scheduled.
-- KEYS: 1..9 partition, 10 old ready, 11 old scheduled, 12 old inflight, 13 old holders,
--       14 old leases, 15 old dead, then 4 keys per endpoint.
-- ARGV: 1 default cap, 2 n endpoints, 3..2+n endpoint ids, then quadruples
--       (kind "r"/"s"/"i", raw job or delivery id, 1-based endpoint index or 0, score)
-- Returns the number of values moved.
local now = redis_now()
local n = tonumber(ARGV[2])
local eps = {}
for i = 1, n do eps[i] = endpoint(ARGV[2 + i], 16 + (i - 1) * 4) end
local moved = 0
local function bury(raw, reason)
  redis.call('LPUSH', KEYS[DEAD], cjson.encode({reason = reason, at = now, raw = raw}))
end
for i = 3 + n, #ARGV, 4 do
  local kind, value, e, score = ARGV[i], ARGV[i + 1], eps[tonumber(ARGV[i + 2])], ARGV[i + 3]
  if kind == 'r' then
    if redis.call('LREM', KEYS[10], -1, value) == 1 then
      if e then redis.call('LPUSH', e.ready, value) else bury(value, 'not a job (old queue)') end
      moved = moved + 1
    end
  elseif kind == 's' then
    if redis.call('ZREM', KEYS[11], value) == 1 then
      if e then redis.call('ZADD', e.sched, tonumber(score), value) else bury(value, 'not a job (old queue)') end
      moved = moved + 1
    end
  elseif kind == 'i' then
    local deadline = tonumber(redis.call('ZSCORE', KEYS[14], value))
    local raw = redis.call('HGET', KEYS[12], value)
    if (not deadline or deadline <= now) and raw then
      if e then redis.call('RPUSH', e.ready, raw) else bury(raw, 'not a job (old queue)') end
      redis.call('HDEL', KEYS[12], value)
      redis.call('HDEL', KEYS[13], value)
      redis.call('ZREM', KEYS[14], value)
      moved = moved + 1
    end
  end
end
-- The old dead list joins the new one.
for _ = 1, 1000 do
  if not redis.call('LMOVE', KEYS[15], KEYS[DEAD], 'RIGHT', 'LEFT') then break end
  moved = moved + 1
end
local joined = false
for i = 1, n do joined = refresh(eps[i], now, tonumber(ARGV[1])).joined or joined end
if joined then signal() end
return moved
