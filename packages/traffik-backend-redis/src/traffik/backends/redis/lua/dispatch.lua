-- Traffik decision script, part 3 of 3: the dispatcher.
--
-- KEYS: one per limit of the request (they share a Cluster hash slot).
-- ARGV: mode ("apply", "peek" or "refund"), now in ms ("" = the server's TIME), TTL
--       padding in ms (see RedisBackend: 0 unless a clock is injected), then per key:
--       strategy name, limit, period_ms, cost, argument count, arguments...
--
-- apply decides every limit against the state as it would be after the limits before it
-- (a key may appear twice) and writes nothing until all have allowed: when any refuses,
-- only the states that refusals themselves changed are written. This is the in-memory
-- backend's apply_many, in one atomic step. Returns 6 values per key: allowed (1/0),
-- limit, remaining, reset_after, retry_after, delay (seconds as "%.17g" strings).
-- peek decides the same way and writes nothing. refund gives each cost back; returns 1.

if redis.replicate_commands then
  redis.replicate_commands() -- Redis < 5: replicate effects, since TIME is not deterministic
end

local mode = ARGV[1]
local now = tonumber(ARGV[2])
if now == nil then
  local time = redis.call("TIME")
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local padding = tonumber(ARGV[3])

local hits = {}
local position = 4
for index = 1, #KEYS do
  local name = ARGV[position]
  local strategy = STRATEGIES[name]
  if strategy == nil then
    return redis.error_reply("traffik: no native strategy named " .. tostring(name))
  end
  local count = tonumber(ARGV[position + 4])
  local args = {}
  for offset = 1, count do
    args[offset] = ARGV[position + 4 + offset]
  end
  hits[index] = {
    strategy = strategy,
    limit = tonumber(ARGV[position + 1]),
    period = tonumber(ARGV[position + 2]),
    cost = tonumber(ARGV[position + 3]),
    args = args,
  }
  position = position + 5 + count
end

local function store(key, new_state, ttl)
  if new_state == DELETE then
    redis.call("DEL", key)
  else
    -- A TTL is always at least 1 ms (PX 0 is an error, and a key must never live forever).
    local px = math.max(math.ceil(ttl), 1) + padding
    redis.call("SET", key, new_state, "PX", string.format("%.0f", px))
  end
end

local function seconds(value)
  return string.format("%.17g", value)
end

if mode == "refund" then
  for index, hit in ipairs(hits) do
    local key = KEYS[index]
    local state = redis.call("GET", key)
    local new_state, ttl = hit.strategy.refund(state, now, hit.limit, hit.period, hit.cost, hit.args)
    if new_state ~= UNCHANGED then
      store(key, new_state, ttl)
    end
  end
  return 1
end

local pending = {} -- key -> {state, ttl}: what the allowed limits would write
local pending_order = {}
local refusals = {} -- {key, state, ttl}: what refusals themselves changed
local all_allowed = true
local reply = {}
for index, hit in ipairs(hits) do
  local key = KEYS[index]
  local entry = pending[key]
  local state
  if entry then
    state = entry[1]
  else
    state = redis.call("GET", key)
  end
  local new_state, allowed, limit, remaining, reset_after, retry_after, delay, ttl =
    hit.strategy.decide(state, now, hit.limit, hit.period, hit.cost, hit.args)
  if allowed then
    if new_state ~= UNCHANGED then
      if not entry then
        pending_order[#pending_order + 1] = key
      end
      pending[key] = {new_state, ttl}
    end
  else
    all_allowed = false
    if new_state ~= UNCHANGED and not entry then
      refusals[#refusals + 1] = {key, new_state, ttl}
    end
  end
  local base = (index - 1) * 6
  reply[base + 1] = allowed and 1 or 0
  reply[base + 2] = limit
  reply[base + 3] = remaining
  reply[base + 4] = seconds(reset_after)
  reply[base + 5] = seconds(retry_after)
  reply[base + 6] = seconds(delay)
end

if mode == "apply" then
  if all_allowed then
    for _, key in ipairs(pending_order) do
      store(key, pending[key][1], pending[key][2])
    end
  else
    for _, refusal in ipairs(refusals) do
      store(refusal[1], refusal[2], refusal[3])
    end
  end
end
return reply
