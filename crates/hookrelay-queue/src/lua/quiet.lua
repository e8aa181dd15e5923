-- A partition's ring looked empty to a worker about to wait: atomically, either clear its
-- signal (so that the next endpoint to join publishes the wake-up again) or, when an
-- endpoint joined meanwhile, return the head of the ring to claim from instead.
-- KEYS: 1 ring, 2 signal. ARGV: 1 how many of the ring's head to return.
local head = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #head == 0 then redis.call('DEL', KEYS[2]) end
return head
