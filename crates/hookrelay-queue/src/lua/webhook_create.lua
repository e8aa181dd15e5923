-- Create a webhook unless its name is taken, and remember the project.
-- KEYS: 1 project's webhooks hash, 2 projects set, 3 version key.
-- ARGV: 1 name, 2 webhook JSON, 3 project, 4 new version token
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
return 1
