-- Settles one attempt (the function is in ack_fn.lua).
-- KEYS: 1..9 partition, then the attempt's eight keys. ARGV: the attempt's 30 arguments.
return ack(9, 0, redis_now())
