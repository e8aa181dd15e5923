-- Delete a webhook. Returns 0 when there was none, 1 deleted, 2 deleted and it was the
-- project's last one (the caller then forgets the project).
-- KEYS: 1 project's webhooks hash, 2 version key.
-- ARGV: 1 name, 2 new version token
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 2
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
