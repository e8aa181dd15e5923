-- Claim up to ARGV[2] jobs for worker ARGV[1], round-robin over the candidate endpoints:
-- first hand back jobs whose lease expired (their worker died), then bring each candidate
-- up to date (due retries promoted, timers resolved), then take one job from each servable
-- endpoint in ring order, again and again, until the worker's free slots are filled or no
-- candidate may give more. A served endpoint goes to the back of the ring.
-- A value that is not a JSON object with a string "id" goes to the dead list with the reason.
-- KEYS: 1..9 partition, then 4 keys per candidate endpoint.
-- ARGV: 1 worker, 2 max jobs, 3 lease (ms), 4 default cap, 5 n candidates,
--       6..5+n candidate endpoint ids, then expired lease members `<endpoint>|<id>`.
-- Returns {{id, raw, endpoint, deleted ("1"/""), …}, {dead reasons…}, recovered,
--          endpoints in the ring, ms until the next timer or lease deadline (-1: none)}.
local worker = ARGV[1]
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local default_cap = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local now = redis_now()
local mine = worker .. '#'
local eps, by_id = {}, {}
for i = 1, n do
  local e = endpoint(ARGV[5 + i], 10 + (i - 1) * 4)
  eps[i] = e
  by_id[e.id] = e
end

local recovered = 0
for i = 6 + n, #ARGV do
  local member = ARGV[i]
  local sep = string.find(member, '|', 1, true)
  local e = sep and by_id[string.sub(member, 1, sep - 1)]
  local score = redis.call('ZSCORE', KEYS[LEASES], member)
  if e and score and tonumber(score) <= now then
    local id = string.sub(member, sep + 1)
    local holder = redis.call('HGET', KEYS[HOLDERS], id)
    if held_by(holder, mine) then
      -- The claiming worker is alive (it is claiming): its lease lapsed only because Redis
      -- was out of reach for a while. Keep the job with it.
      redis.call('ZADD', KEYS[LEASES], now + lease, member)
      redis.call('ZADD', e.leases, now + lease, id)
    else
      recovered = recovered + hand_back(e, id)
    end
  end
end

local active = {}
local joined = false
for i = 1, n do
  local e = eps[i]
  e.s = refresh(e, now, default_cap)
  joined = joined or e.s.joined
  if e.s.ok then
    e.turn = tonumber(redis.call('ZSCORE', KEYS[RING], e.id))
    table.insert(active, e)
  end
end
table.sort(active, function(a, b) return a.turn < b.turn end)

local jobs, dead, served = {}, {}, {}
local taken = 0
local deadline = now + lease
while taken < max and #active > 0 do
  local still = {}
  for _, e in ipairs(active) do
    if taken >= max then
      break
    end
    local id, raw, reason = take_one(e, e.s, now, deadline, mine)
    if id or reason then
      served[e.id] = e
      if id then
        table.insert(jobs, id)
        table.insert(jobs, raw)
        table.insert(jobs, e.id)
        table.insert(jobs, e.s.deleted and '1' or '')
        taken = taken + 1
      else
        table.insert(dead, reason)
      end
      redis.call('ZADD', KEYS[RING], 'XX', redis.call('HINCRBY', KEYS[META], 'seq', 1), e.id)
      if e.s.slots > 0 and not (e.s.rate and e.s.tat > now) then
        table.insert(still, e)
      end
    end
  end
  active = still
end
for _, e in pairs(served) do
  after_take(e, e.s, now)
end

local ring = redis.call('ZCARD', KEYS[RING])
if ring == 0 then
  redis.call('DEL', KEYS[SIGNAL])
elseif joined then
  -- Endpoints came back (a due retry, a lapsed lease): tell idle workers.
  signal()
end
local wait = -1
local t = redis.call('ZRANGE', KEYS[TIMERS], 0, 0, 'WITHSCORES')
if #t > 0 then wait = math.max(0, tonumber(t[2]) - now) end
local l = redis.call('ZRANGE', KEYS[LEASES], 0, 0, 'WITHSCORES')
if #l > 0 then
  local d = math.max(0, tonumber(l[2]) - now)
  if wait < 0 or d < wait then wait = d end
end
return {jobs, dead, recovered, ring, wait}
