-- Enqueue the deliveries of one event, atomically: record, index entry and ready job for
-- each, plus the idempotency answer. A repeated event id returns the first answer instead.
-- KEYS[1] idempotency key ("" semantics via ARGV[1]), KEYS[2] ready list,
-- KEYS[3] project's deliveries index, KEYS[3+i] record of delivery i.
-- ARGV[1] "1" when KEYS[1] is used, ARGV[2] answer JSON, ARGV[3] retention seconds,
-- ARGV[4] now (ms); then per delivery: flat field array (JSON), job JSON, delivery id.
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
end
local retention = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local n = (#ARGV - 4) / 3
for i = 1, n do
  local base = 4 + (i - 1) * 3
  local fields = cjson.decode(ARGV[base + 1])
  local rkey = KEYS[3 + i]
  redis.call('HSET', rkey, unpack(fields))
  redis.call('EXPIRE', rkey, retention)
  redis.call('ZADD', KEYS[3], now, ARGV[base + 3])
  redis.call('LPUSH', KEYS[2], ARGV[base + 2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - retention * 1000)
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', retention)
end
return {1, ARGV[2]}
