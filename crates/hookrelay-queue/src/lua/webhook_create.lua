-- Create a webhook unless its name is taken (the caller then remembers the project).
-- KEYS: 1 project's webhooks hash, 2 version key.
-- ARGV: 1 name, 2 webhook JSON, 3 new version token
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3])
return 1
