-- Hand jobs that worker ARGV[1] holds but has not started back to the front of the queue.
-- KEYS: 1 inflight, 2 holders, 3 leases, 4 ready. ARGV: 1 worker, 2.. ids
local mine = ARGV[1] .. '#'
local n = 0
for i = 2, #ARGV do
  local holder = redis.call('HGET', KEYS[2], ARGV[i])
  if holder and string.sub(holder, 1, #mine) == mine then
    local raw = redis.call('HGET', KEYS[1], ARGV[i])
    if raw then
      redis.call('RPUSH', KEYS[4], raw)
      n = n + 1
    end
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('ZREM', KEYS[3], ARGV[i])
  end
end
return n
