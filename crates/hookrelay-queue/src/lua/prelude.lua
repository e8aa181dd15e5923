-- Shared by every queue script (prepended to each). KEYS[1..9] are the partition's keys:
-- ring, timers, leases, inflight, holders, signal, dead, outbox, meta. An endpoint's four
-- keys (state, ready, scheduled, leases) come after a script's own keys, as documented in it.
local RING, TIMERS, LEASES, INFLIGHT, HOLDERS, SIGNAL, DEAD, OUTBOX, META = 1, 2, 3, 4, 5, 6, 7, 8, 9
-- Most due retries one look at an endpoint promotes.
local PROMOTE_CHUNK = 1000
-- The concurrency of a deleted webhook's endpoint, whose jobs only end as failed.
local DELETED_CAP = 1000

-- Milliseconds on Redis's own clock, so workers' clocks never decide what is due.
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The endpoint whose four keys start at KEYS[base].
local function endpoint(id, base)
  return {id = id, state = KEYS[base], ready = KEYS[base + 1], sched = KEYS[base + 2],
    leases = KEYS[base + 3]}
end

local function lease_member(e, id)
  return e.id .. '|' .. id
end

-- Wake idle workers: the signal list holds one element while the ring has endpoints. Called
-- when an endpoint joins the ring (a worker only waits on the signal after a claim found
-- the ring empty, so a join is what it waits for). With several partitions workers cannot
-- block on every signal list: they subscribe to the signal channels instead (ARGV-free:
-- the channel is the list's name; a cluster delivers it to subscribers on every node).
local function signal()
  if redis.call('LPUSH', KEYS[SIGNAL], '1') == 1 then
    redis.call('PUBLISH', KEYS[SIGNAL], '1')
  end
  redis.call('LTRIM', KEYS[SIGNAL], 0, 0)
end

-- Whether `holder` ("<worker>#<attempt>") is the worker whose holder prefix is `mine`.
local function held_by(holder, mine)
  return holder and string.sub(holder, 1, #mine) == mine
end

-- Forget a claimed job: in-flight copy, holder, and both leases.
local function drop_inflight(e, id)
  redis.call('HDEL', KEYS[INFLIGHT], id)
  redis.call('HDEL', KEYS[HOLDERS], id)
  redis.call('ZREM', KEYS[LEASES], lease_member(e, id))
  redis.call('ZREM', e.leases, id)
end

-- Hands a held job back to the front of its endpoint's queue (the next one served) and
-- drops it from the in-flight keys. Returns 1 when there was a job to hand back, else 0.
local function hand_back(e, id)
  local raw = redis.call('HGET', KEYS[INFLIGHT], id)
  if raw then
    redis.call('RPUSH', e.ready, raw)
  end
  drop_inflight(e, id)
  return raw and 1 or 0
end

-- An endpoint's settings and flow state, read once.
local function settings(e, default_cap)
  local v = redis.call('HMGET', e.state, 'enabled', 'deleted', 'cap', 'rate', 'ordered',
    'paused_until', 'circuit', 'circuit_until', 'tat')
  local s = {
    off = v[1] == '0',
    deleted = v[2] == '1',
    cap = tonumber(v[3]) or default_cap,
    rate = tonumber(v[4]),
    ordered = v[5] == '1',
    paused_until = tonumber(v[6]) or 0,
    circuit = v[7] or '',
    circuit_until = tonumber(v[8]) or 0,
    tat = tonumber(v[9]) or 0,
  }
  if s.deleted then
    -- Its jobs are handed out only to be ended as failed: nothing holds them back.
    s.off, s.cap, s.rate, s.ordered, s.paused_until, s.circuit = false, DELETED_CAP, nil, false, 0, ''
  end
  return s
end

-- Look at an endpoint: promote its due retries, end a cooldown that is over, and work out
-- whether it may be served now. Returns its settings with `ok` (servable), `slots` (free
-- concurrency) and `wake` (when that may change: a due retry, the end of a pause, a
-- cooldown or a rate-limit wait) filled in. Its place in the ring is left to `place`.
local function assess(e, now, default_cap)
  local s = settings(e, default_cap)
  local wake = nil
  local function at(t)
    if t and (wake == nil or t < wake) then wake = t end
  end
  local ok = false
  if not s.off then
    local first = redis.call('ZRANGE', e.sched, 0, 0, 'WITHSCORES')
    if #first > 0 and tonumber(first[2]) <= now then
      local due = redis.call('ZRANGEBYSCORE', e.sched, '-inf', now, 'LIMIT', 0, PROMOTE_CHUNK)
      if s.ordered then
        -- An ordered endpoint's retry is its head: back to the front, oldest first.
        for i = #due, 1, -1 do redis.call('RPUSH', e.ready, due[i]) end
      else
        for i = 1, #due do redis.call('LPUSH', e.ready, due[i]) end
      end
      redis.call('ZREM', e.sched, unpack(due))
      first = redis.call('ZRANGE', e.sched, 0, 0, 'WITHSCORES')
    end
    if #first > 0 then at(tonumber(first[2])) end
    if redis.call('LLEN', e.ready) > 0 then
      ok = true
      if s.paused_until > now then
        ok = false
        at(s.paused_until)
      end
      if s.circuit == 'open' then
        if s.circuit_until > now then
          ok = false
          at(s.circuit_until)
        else
          redis.call('HSET', e.state, 'circuit', 'half_open')
          s.circuit = 'half_open'
        end
      end
      -- An ordered endpoint whose head waits for a retry holds the rest back.
      if s.ordered and #first > 0 then ok = false end
      if ok then
        local cap = s.cap
        if s.ordered or s.circuit == 'half_open' then cap = 1 end
        s.slots = cap - redis.call('ZCOUNT', e.leases, now, '+inf')
        -- At its cap it waits for an ack (or for a dead worker's lease to be reaped,
        -- which brings it back through the claim that reaps it).
        if s.slots <= 0 then ok = false end
      end
      if ok and s.rate and s.tat > now then
        ok = false
        at(s.tat)
      end
    end
  end
  s.ok = ok
  s.wake = wake
  return s
end

-- Put an endpoint in the ring (at the back) if it is servable, else out of it, and set its
-- timer. Sets `joined` when it entered the ring.
local function place(e, s)
  if s.ok then
    if not redis.call('ZSCORE', KEYS[RING], e.id) then
      redis.call('ZADD', KEYS[RING], redis.call('HINCRBY', KEYS[META], 'seq', 1), e.id)
      s.joined = true
    end
  else
    redis.call('ZREM', KEYS[RING], e.id)
  end
  if s.wake then
    redis.call('ZADD', KEYS[TIMERS], s.wake, e.id)
  else
    redis.call('ZREM', KEYS[TIMERS], e.id)
  end
  return s
end

-- Bring an endpoint's place in the ring and its timer up to date (`assess`, then `place`).
local function refresh(e, now, default_cap)
  return place(e, assess(e, now, default_cap))
end

-- Hold a job for the worker: in flight, its holder, both leases, one slot, one rate slot.
local function claim_job(e, s, now, deadline, mine, id, attempt, raw)
  redis.call('HSET', KEYS[INFLIGHT], id, raw)
  redis.call('HSET', KEYS[HOLDERS], id, mine .. attempt)
  redis.call('ZADD', KEYS[LEASES], deadline, lease_member(e, id))
  redis.call('ZADD', e.leases, deadline, id)
  s.slots = s.slots - 1
  if s.rate then
    s.tat = math.max(s.tat, now) + 1000 / s.rate
    redis.call('HSET', e.state, 'tat', math.floor(s.tat))
  end
  return id, raw
end

-- Take the endpoint's next ready job for the worker whose holder prefix is `mine`, under a
-- lease until `deadline`. Returns id, raw for a job; nil, nil, reason for a value that is not
-- a JSON object with a string "id" (moved to the dead list with the reason); nil when the
-- endpoint's queue is empty.
local function take_one(e, s, now, deadline, mine)
  local raw = redis.call('RPOP', e.ready)
  if not raw then return nil end
  -- Jobs written by hookrelay start with {"v":N,"id":"…" and carry "attempt":N at the top
  -- level (a quote inside a JSON string is escaped, so neither pattern can match inside
  -- one): read both without decoding the whole job. Anything else is decoded to say why.
  local id = string.match(raw, '^{"v":%d+,"id":"([^"\\|]+)"')
  local attempt = id and string.match(raw, '"attempt":(%d+)')
  if id and attempt and redis.call('HEXISTS', KEYS[INFLIGHT], id) == 0 then
    return claim_job(e, s, now, deadline, mine, id, attempt, raw)
  end
  local ok, job = pcall(cjson.decode, raw)
  local reason = nil
  id = nil
  if not ok then
    reason = 'not valid JSON'
  elseif type(job) ~= 'table' then
    reason = 'not a JSON object'
  else
    id = job['id']
    if type(id) ~= 'string' or id == '' or string.find(id, '|', 1, true) then
      reason = 'no string "id" field'
    elseif redis.call('HEXISTS', KEYS[INFLIGHT], id) == 1 then
      reason = 'a job with id ' .. id .. ' is already in flight'
    end
  end
  if reason then
    redis.call('LPUSH', KEYS[DEAD], cjson.encode({reason = reason, at = now, raw = raw}))
    return nil, nil, reason
  end
  return claim_job(e, s, now, deadline, mine, id, tostring(job['attempt']), raw)
end

-- After taking jobs from an endpoint that `refresh` found servable: out of the ring once it
-- has no free slot, no ready job or must wait for its rate limit (then with a timer).
local function after_take(e, s, now)
  if s.rate and s.tat > now then
    redis.call('ZREM', KEYS[RING], e.id)
    local t = tonumber(redis.call('ZSCORE', KEYS[TIMERS], e.id))
    if not t or s.tat < t then redis.call('ZADD', KEYS[TIMERS], s.tat, e.id) end
  elseif s.slots <= 0 or redis.call('LLEN', e.ready) == 0 then
    redis.call('ZREM', KEYS[RING], e.id)
  end
end

-- Mark an endpoint disabled and leave a notice for the operational event.
-- `project` and `webhook` name it when its state does not (yet).
local function disable(e, now, reason, failing_since, project, webhook)
  redis.call('HSET', e.state, 'enabled', '0', 'disabled_reason', reason, 'disabled_at', now)
  redis.call('HSETNX', e.state, 'project', project)
  redis.call('HSETNX', e.state, 'webhook', webhook)
  local who = redis.call('HMGET', e.state, 'project', 'webhook')
  redis.call('LPUSH', KEYS[OUTBOX], cjson.encode({endpoint = e.id, project = who[1],
    webhook = who[2], reason = reason, at = now, failing_since = failing_since}))
end
