-- Create a webhook unless its name is taken, and remember the project.
-- KEYS: 1 project's webhooks hash, 2 projects set. ARGV: 1 name, 2 webhook JSON, 3 project
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[3])
return 1
