-- Settles several attempts of one partition in one call, each as `ack.lua` would, in order,
-- on one reading of Redis's clock. An attempt whose settling raises an error does not stop
-- the others: its entry carries the error instead.
-- KEYS: 1..9 partition, then eight keys per attempt. ARGV: 1 number of attempts, then 30
-- arguments per attempt.
-- Returns one entry per attempt: what `ack.lua` returns, or {-1, {}, error}.
local now = redis_now()
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local ok, r = pcall(ack, 9 + 8 * i, 1 + 30 * i, now)
  if ok then
    out[i + 1] = r
  else
    if type(r) == 'table' then r = r.err or 'error' end
    out[i + 1] = {-1, {}, tostring(r)}
  end
end
return out
