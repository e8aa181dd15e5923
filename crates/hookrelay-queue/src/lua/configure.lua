-- Set an endpoint's settings from its webhook, and enable, disable or delete it.
-- Re-enabling clears what held it back (failures, circuit, pause), so its backlog runs.
-- KEYS: 1..9 partition, 10..13 endpoint.
-- ARGV: 1 endpoint id, 2 project, 3 webhook name, 4 cap ("" for the default),
--       5 rate ("" for none), 6 ordered ("1"/""), 7 "1" enabled / "0" disabled / "deleted",
--       8 default cap, 9 reason when it is disabled now, 10 retention (s)
local e = endpoint(ARGV[1], 10)
local now = redis_now()
local was = redis.call('HGET', e.state, 'enabled')
redis.call('HSET', e.state, 'project', ARGV[2], 'webhook', ARGV[3], 'cap', ARGV[4],
  'rate', ARGV[5], 'ordered', ARGV[6])
if ARGV[7] == 'deleted' then
  -- Its backlog drains in moments (ended as failed); the mark outlives the records, so
  -- nothing can be redelivered to the deleted webhook.
  redis.call('HSET', e.state, 'deleted', '1')
  redis.call('EXPIRE', e.state, tonumber(ARGV[10]))
elseif ARGV[7] == '1' then
  if was == '0' then
    redis.call('HSET', e.state, 'enabled', '1', 'disabled_reason', '', 'disabled_at', '',
      'failing_since', '', 'failures', 0, 'circuit', '', 'circuit_until', '', 'opens', 0,
      'paused_until', '')
  elseif not was then
    redis.call('HSET', e.state, 'enabled', '1')
  end
elseif was ~= '0' then
  redis.call('HSET', e.state, 'enabled', '0', 'disabled_reason', ARGV[9], 'disabled_at', now)
end
if refresh(e, now, tonumber(ARGV[8])).joined then signal() end
return 1
