-- Claim up to ARGV[2] ready jobs for worker ARGV[1], after handing back jobs whose lease
-- expired (their worker died) and promoting due retries, both in bounded chunks.
-- A value that is not a JSON object with a string "id" goes to the dead list with the reason.
-- Time is Redis's own clock, so workers' clocks never decide whose lease has run out.
-- KEYS: 1 ready, 2 scheduled, 3 inflight, 4 holders, 5 leases, 6 dead
-- ARGV: 1 worker, 2 max jobs, 3 lease (ms), 4 promote chunk, 5 reap chunk
-- Holders are "<worker>#<attempt>": an ack settles only the attempt it ran.
-- Returns {{id, raw, id, raw, …}, {dead reasons…}, recovered, promoted}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mine = ARGV[1] .. '#'
local lease = tonumber(ARGV[3])
local recovered = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(expired) do
  local holder = redis.call('HGET', KEYS[4], id)
  if holder and string.sub(holder, 1, #mine) == mine then
    -- The claiming worker is alive (it is claiming): its lease lapsed only because Redis
    -- was out of reach for a while. Keep the job with it.
    redis.call('ZADD', KEYS[5], now + lease, id)
  else
    local raw = redis.call('HGET', KEYS[3], id)
    if raw then
      redis.call('RPUSH', KEYS[1], raw)
      recovered = recovered + 1
    end
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, raw in ipairs(due) do
  redis.call('LPUSH', KEYS[1], raw)
  redis.call('ZREM', KEYS[2], raw)
end
local jobs = {}
local dead = {}
local max = tonumber(ARGV[2])
if max > 0 then
  local popped = redis.call('RPOP', KEYS[1], max)
  if popped then
    local deadline = now + lease
    for _, raw in ipairs(popped) do
      local ok, job = pcall(cjson.decode, raw)
      local id = nil
      local reason = nil
      if not ok then
        reason = 'not valid JSON'
      elseif type(job) ~= 'table' then
        reason = 'not a JSON object'
      else
        id = job['id']
        if type(id) ~= 'string' or id == '' then
          reason = 'no string "id" field'
        elseif redis.call('HEXISTS', KEYS[3], id) == 1 then
          reason = 'a job with id ' .. id .. ' is already in flight'
        end
      end
      if reason then
        redis.call('LPUSH', KEYS[6], cjson.encode({reason = reason, at = now, raw = raw}))
        table.insert(dead, reason)
      else
        redis.call('HSET', KEYS[3], id, raw)
        redis.call('HSET', KEYS[4], id, mine .. tostring(job['attempt']))
        redis.call('ZADD', KEYS[5], deadline, id)
        table.insert(jobs, id)
        table.insert(jobs, raw)
      end
    end
  end
end
return {jobs, dead, recovered, #due}
