-- Extend the leases of the jobs worker ARGV[1] still holds; returns the ids that another
-- worker holds now. A job held by nobody was settled between the worker's snapshot of its
-- ids and this call (or handed back after its lease expired, which the claim that did it
-- reports): not lost.
-- KEYS: 1..9 partition, then 4 keys per endpoint.
-- ARGV: 1 worker, 2 lease (ms), 3 n endpoints, 4..3+n endpoint ids, then pairs
--       (delivery id, 1-based index of its endpoint).
local mine = ARGV[1] .. '#'
local n = tonumber(ARGV[3])
local eps = {}
for i = 1, n do eps[i] = endpoint(ARGV[3 + i], 10 + (i - 1) * 4) end
local deadline = redis_now() + tonumber(ARGV[2])
local lost = {}
for i = 4 + n, #ARGV, 2 do
  local id, e = ARGV[i], eps[tonumber(ARGV[i + 1])]
  local holder = redis.call('HGET', KEYS[HOLDERS], id)
  if e and held_by(holder, mine) then
    redis.call('ZADD', KEYS[LEASES], 'XX', deadline, lease_member(e, id))
    redis.call('ZADD', e.leases, 'XX', deadline, id)
  elseif holder then
    table.insert(lost, id)
  end
end
return lost
