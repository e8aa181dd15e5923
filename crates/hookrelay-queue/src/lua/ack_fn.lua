-- Record the outcome of one attempt and, if the worker still holds the job, settle it: the
-- endpoint's health (success, failure, circuit, pause, disable), then the next attempt
-- (a retry in the endpoint's scheduled set, or back to the front of its queue when the
-- attempt was deferred) or the end, then drop it from the in-flight keys. One script, so a
-- job leaves the queue only together with the record of what happened to it.
-- `ack(k, a, now)` settles one attempt whose eight keys are KEYS[k + 1..k + 8] and whose 30
-- arguments are ARGV[a + 1..a + 30]; `ack.lua` runs it once, `ack_many.lua` for several.
-- Its keys: 1 record, 2 attempts, 3 the endpoint's failed index, 4..7 endpoint, 8 the
--       project's activity hash for this minute.
-- Its arguments: 1 worker, 2 id, 3 endpoint id, 4 status, 5 attempt JSON, 6 attempt number,
--       7 next attempt at (ms, "" when none), 8 next job JSON ("" when none),
--       9 where the next job goes ("scheduled" or "front"), 10 retention (s) while the
--       delivery is not finished,
--       11 last error, 12 last status code, 13 response JSON, 14 max attempt records,
--       15 verdict (success|broken|rejected|pause|gone|none), 16 pause until (ms),
--       17 default cap, 18 disable after (ms), 19 auto-disable reason,
--       20 circuit threshold, 21 first cooldown (ms), 22 longest cooldown (ms),
--       23 project, 24 webhook name, 25 lease (ms) to take the endpoint's next job under
--       ("" not to): taken only when no other endpoint waits in the ring, so a worker
--       keeps a busy endpoint's slot without a claim round trip but never jumps the queue,
--       26 the activity field a success counts in ("" to count nothing: webhook tests),
--       27 activity retention (s), 28 retention (s) of a succeeded delivery, 29 of a
--       failed one, 30 the attempt's summary field when it succeeded (then argument 5 is ""
--       and the attempt is the record's field `a<n>`, not an entry of the attempts list).
-- Returns {1 settled / 0 not held, {id, raw, endpoint, deleted} or {}, dead reason or ""}.
local function ack(k, a, now)
  local A = {unpack(ARGV, a + 1, a + 30)}
  local id = A[2]
  local e = endpoint(A[3], k + 4)
  local retention = tonumber(A[10])
  if A[30] ~= '' then
    redis.call('HSET', KEYS[k + 1], 'a' .. A[6], A[30])
  elseif redis.call('RPUSH', KEYS[k + 2], A[5]) > tonumber(A[14]) then
    redis.call('LTRIM', KEYS[k + 2], -tonumber(A[14]), -1)
  end
  -- The holder is "<worker>#<attempt>": an ack settles only the attempt it ran, so a late or
  -- repeated ack can never settle a later attempt of the same delivery.
  if redis.call('HGET', KEYS[HOLDERS], id) ~= A[1] .. '#' .. A[6] then
    redis.call('EXPIRE', KEYS[k + 2], retention)
    if A[30] ~= '' and redis.call('TTL', KEYS[k + 1]) < 0 then
      redis.call('EXPIRE', KEYS[k + 1], retention)
    end
    return {0, {}, ''}
  end
  local status, next_at, next_raw, last_error = A[4], A[7], A[8], A[11]
  local index_failed = true
  local verdict = A[15]
  local st = redis.call('HMGET', e.state, 'deleted', 'enabled', 'failing_since', 'failures',
    'circuit', 'opens', 'last_success_at')
  if st[1] == '1' then
    -- The webhook was deleted: the delivery ends here, and no recovery brings it back.
    if status ~= 'succeeded' then
      status, next_at, next_raw, index_failed = 'failed', '', '', false
      last_error = 'webhook deleted'
    end
  elseif verdict == 'success' then
    if (tonumber(st[4]) or 0) > 0 or (st[3] or '') ~= '' or (st[5] or '') ~= '' then
      redis.call('HSET', e.state, 'failures', 0, 'last_success_at', now, 'failing_since', '',
        'circuit', '', 'circuit_until', '', 'opens', 0)
    elseif now - (tonumber(st[7]) or 0) >= 1000 then
      -- The time of the last success, to the second: not a write per delivery.
      redis.call('HSET', e.state, 'last_success_at', now)
    end
  elseif verdict == 'broken' or verdict == 'rejected' then
    local failing_since = tonumber(st[3]) or now
    redis.call('HSET', e.state, 'last_failure_at', now, 'failing_since', failing_since)
    if verdict == 'broken' then
      local failures = (tonumber(st[4]) or 0) + 1
      redis.call('HSET', e.state, 'failures', failures)
      local circuit = st[5] or ''
      if circuit == 'half_open' or (circuit == '' and failures >= tonumber(A[20])) then
        local opens = (tonumber(st[6]) or 0) + 1
        local cooldown = math.min(tonumber(A[21]) * 2 ^ math.min(opens - 1, 30), tonumber(A[22]))
        redis.call('HSET', e.state, 'circuit', 'open', 'circuit_until', now + cooldown, 'opens', opens)
      end
    end
    if st[2] ~= '0' and now - failing_since >= tonumber(A[18]) then
      disable(e, now, A[19], failing_since, A[23], A[24])
    end
  elseif verdict == 'pause' then
    local until_ms = tonumber(A[16])
    local current = tonumber(redis.call('HGET', e.state, 'paused_until')) or 0
    if until_ms > current then
      redis.call('HSET', e.state, 'paused_until', until_ms)
    end
  elseif verdict == 'gone' then
    if st[2] ~= '0' then
      disable(e, now, 'the receiver answered 410 Gone', nil, A[23], A[24])
    end
  end
  -- Fields without a value are left out, so that the record stays small.
  -- A successful attempt's status code is in its summary field.
  local code = A[12]
  if A[30] ~= '' then code = '' end
  -- (`attempts`, the last attempt's number, was a field of earlier versions' records.)
  local set, unset = {'status', status, 'updated_at', now}, {'attempts'}
  for _, kv in ipairs({{'next_attempt_at', next_at}, {'last_error', last_error},
      {'last_status_code', code}, {'response', A[13]}}) do
    if kv[2] == '' then
      table.insert(unset, kv[1])
    else
      table.insert(set, kv[1])
      table.insert(set, kv[2])
    end
  end
  redis.call('HSET', KEYS[k + 1], unpack(set))
  redis.call('HDEL', KEYS[k + 1], unpack(unset))
  -- A finished delivery is kept for its outcome's retention.
  if status == 'succeeded' then
    retention = tonumber(A[28])
  elseif status == 'failed' then
    retention = tonumber(A[29])
  end
  redis.call('EXPIRE', KEYS[k + 1], retention)
  -- A first attempt that succeeded left no attempts list (attempt numbers go on across
  -- redeliveries, so any earlier attempt means a number above 1).
  if A[30] == '' or A[6] ~= '1' then
    redis.call('EXPIRE', KEYS[k + 2], retention)
  end
  if A[26] ~= '' then
    local field
    if status == 'succeeded' then
      field = A[26]
    elseif status == 'failed' then
      field = 'failed'
    elseif next_raw ~= '' and A[9] ~= 'front' then
      field = 'retried'
    end
    if field and redis.call('HINCRBY', KEYS[k + 8], field, 1) == 1 then
      redis.call('EXPIRE', KEYS[k + 8], A[27])
    end
  end
  if next_raw ~= '' then
    if A[9] == 'front' then
      redis.call('RPUSH', e.ready, next_raw)
    else
      redis.call('ZADD', e.sched, tonumber(next_at), next_raw)
    end
  end
  -- (A redelivered delivery already left the failed index when it was queued again.)
  if status == 'failed' and index_failed then
    redis.call('ZADD', KEYS[k + 3], now, id)
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now - retention * 1000)
    redis.call('EXPIRE', KEYS[k + 3], retention)
  end
  drop_inflight(e, id)
  local default_cap = tonumber(A[17])
  local s = assess(e, now, default_cap)
  local next_job, dead_reason = {}, ''
  if A[25] ~= '' and s.ok then
    -- Keep the slot only when no other endpoint waits for a turn.
    local ring = redis.call('ZCARD', KEYS[RING])
    if ring == 0 or (ring == 1 and redis.call('ZSCORE', KEYS[RING], e.id)) then
      local next_id, raw, reason = take_one(e, s, now, now + tonumber(A[25]), A[1] .. '#')
      if next_id then
        next_job = {next_id, raw, e.id, s.deleted and '1' or ''}
      end
      dead_reason = reason or ''
      if s.slots <= 0 or redis.call('LLEN', e.ready) == 0 then
        s.ok = false
      elseif s.rate and s.tat > now then
        s.ok = false
        if not s.wake or s.tat < s.wake then s.wake = s.tat end
      end
    end
  end
  if place(e, s).joined then signal() end
  return {1, next_job, dead_reason}
end
