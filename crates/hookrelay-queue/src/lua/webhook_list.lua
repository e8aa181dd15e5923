-- A project's webhooks, unless the caller's copy is current.
-- KEYS: 1 project's webhooks hash, 2 version key. ARGV: 1 the caller's version ("" for none)
-- Returns {version}: the caller's copy is current; {version or "", name, json, …}: read anew.
local version = redis.call('GET', KEYS[2]) or ''
if version ~= '' and version == ARGV[1] then
  return {version}
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, version)
return out
