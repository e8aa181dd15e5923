-- Hand jobs that worker ARGV[1] holds but has not started back to the front of their
-- endpoints' queues.
-- KEYS: 1..9 partition, then 4 keys per endpoint.
-- ARGV: 1 worker, 2 default cap, 3 n endpoints, 4..3+n endpoint ids, then pairs
--       (delivery id, 1-based index of its endpoint).
local mine = ARGV[1] .. '#'
local n = tonumber(ARGV[3])
local eps = {}
for i = 1, n do eps[i] = endpoint(ARGV[3 + i], 10 + (i - 1) * 4) end
local count = 0
for i = 4 + n, #ARGV, 2 do
  local id, e = ARGV[i], eps[tonumber(ARGV[i + 1])]
  local holder = redis.call('HGET', KEYS[HOLDERS], id)
  if e and held_by(holder, mine) then
    count = count + hand_back(e, id)
  end
end
local now = redis_now()
local joined = false
for i = 1, n do joined = refresh(eps[i], now, tonumber(ARGV[2])).joined or joined end
if joined then signal() end
return count
