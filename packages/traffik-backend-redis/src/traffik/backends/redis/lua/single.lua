-- Traffik decision script, last part: one key decided by the one strategy of this script.
--
-- KEYS[1]: the key. ARGV: op ("a" apply, "p" peek, "r" refund; see read_clock), cost,
-- spec. apply decides and writes (refusals write only what they change, which no
-- built-in strategy does); peek decides and writes nothing; refund gives cost back.
-- Replies with the decision as one status line (see outcome), or 1 for a refund: one
-- short line parses faster in the client than an array of six values.
local _, strategy = next(STRATEGIES)
local key, op = KEYS[1], ARGV[1]
local now, padding = read_clock(op)
local cost, spec = tonumber(ARGV[2]), ARGV[3]
local mode = string.byte(op)

if strategy.structured then
  if mode == 114 then
    strategy.refund(key, now, cost, spec, padding)
    return 1
  end
  return {ok = outcome(strategy.decide(key, now, cost, spec, mode == 97, padding))}
end

local state = redis.call("GET", key)
if mode == 114 then
  local new_state, ttl = strategy.refund(state, now, cost, spec)
  if new_state ~= nil then
    store(key, new_state, ttl, padding)
  end
  return 1
end
local new_state, ttl, allowed, limit, remaining, reset, retry, delay =
  strategy.decide(state, now, cost, spec)
if mode == 97 and new_state ~= nil then
  store(key, new_state, ttl, padding)
end
return {ok = outcome(allowed, limit, remaining, reset, retry, delay)}
