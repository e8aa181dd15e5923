-- Delete a webhook; forget the project when it was its last one.
-- KEYS: 1 project's webhooks hash, 2 projects set, 3 version key.
-- ARGV: 1 name, 2 project, 3 new version token
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[3])
end
return 1
