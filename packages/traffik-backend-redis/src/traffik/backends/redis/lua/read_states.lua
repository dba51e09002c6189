-- The generic path, step 1: the server's TIME and the stored state of every key.
-- Returns {seconds, microseconds, state_1, ..., state_n} (a missing state is nil).
local reply = redis.call("TIME")
for index = 1, #KEYS do
  reply[index + 2] = redis.call("GET", KEYS[index])
end
return reply
