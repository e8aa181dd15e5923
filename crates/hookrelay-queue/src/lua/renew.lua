-- Extend the leases of the jobs worker ARGV[1] still holds and record its heartbeat;
-- returns the ids that another worker holds now.
-- KEYS: 1 holders, 2 leases, 3 workers. ARGV: 1 worker, 2 new deadline (ms), 3 now (ms), 4.. ids
-- A job held by nobody was settled between the worker's snapshot of its ids and this call
-- (or handed back after its lease expired, which the claim that did it reports): not lost.
local lost = {}
for i = 4, #ARGV do
  local holder = redis.call('HGET', KEYS[1], ARGV[i])
  if holder == ARGV[1] then
    redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]), ARGV[i])
  elseif holder then
    table.insert(lost, ARGV[i])
  end
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
-- Forget workers silent for an hour (killed without a clean stop): the set stays bounded.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[3]) - 3600000)
return lost
