-- Extend the leases of the jobs worker ARGV[1] still holds and record its heartbeat;
-- returns the ids that another worker holds now. Time is Redis's own clock.
-- KEYS: 1 holders, 2 leases, 3 workers. ARGV: 1 worker, 2 lease (ms), 3.. ids
-- A job held by nobody was settled between the worker's snapshot of its ids and this call
-- (or handed back after its lease expired, which the claim that did it reports): not lost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mine = ARGV[1] .. '#'
local deadline = now + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV do
  local holder = redis.call('HGET', KEYS[1], ARGV[i])
  if holder and string.sub(holder, 1, #mine) == mine then
    redis.call('ZADD', KEYS[2], 'XX', deadline, ARGV[i])
  elseif holder then
    table.insert(lost, ARGV[i])
  end
end
redis.call('ZADD', KEYS[3], now, ARGV[1])
-- Forget workers silent for an hour (killed without a clean stop): the set stays bounded.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 3600000)
return lost
