-- Enqueue the deliveries of one event, atomically: record, index entry and the job in its
-- endpoint's queue for each, plus the idempotency answer. A repeated event id returns the
-- first answer instead.
-- KEYS: 1..9 partition, 10 idempotency key (used when ARGV[1] is "1"), 11 the project's
--       deliveries index, 12 the event's payload (used when ARGV[6] is not ""); a key not
--       used names one of the partition's, so that a cluster sees one slot; then per
--       delivery 5 keys: record, endpoint (4).
-- ARGV: 1 "1" when KEYS[10] is used, 2 answer JSON, 3 retention (s), 4 now (ms),
--       5 default cap, 6 the event's payload JSON ("" for none), 7 how long it is kept (s);
--       then per delivery: flat field array (JSON), job JSON, delivery id, endpoint id.
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[10])
  if existing then return {0, existing} end
end
local retention = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local default_cap = tonumber(ARGV[5])
local clock = nil
local joined = false
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[12], ARGV[6], 'EX', tonumber(ARGV[7]))
end
local n = (#ARGV - 7) / 4
for i = 1, n do
  local a = 7 + (i - 1) * 4
  local k = 13 + (i - 1) * 5
  local e = endpoint(ARGV[a + 4], k + 1)
  redis.call('HSET', KEYS[k], unpack(cjson.decode(ARGV[a + 1])))
  redis.call('EXPIRE', KEYS[k], retention)
  redis.call('ZADD', KEYS[11], now, ARGV[a + 3])
  redis.call('LPUSH', e.ready, ARGV[a + 2])
  -- An endpoint already in the ring stays there; any other is looked at anew.
  if not redis.call('ZSCORE', KEYS[RING], e.id) then
    clock = clock or redis_now()
    joined = refresh(e, clock, default_cap).joined or joined
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now - retention * 1000)
if ARGV[1] == '1' then
  redis.call('SET', KEYS[10], ARGV[2], 'EX', retention)
end
if joined then signal() end
return {1, ARGV[2]}
