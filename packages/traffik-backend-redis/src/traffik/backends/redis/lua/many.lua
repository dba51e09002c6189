-- Traffik decision script, last part: several keys (the limits of one request, in one
-- Cluster slot), each with its strategy, all-or-nothing.
--
-- KEYS: one per limit. ARGV: op (as in single.lua), then per key: strategy name, cost,
-- spec. apply decides every limit against the state as it would be after the limits
-- before it (a key may appear twice) and keeps nothing unless all allow: string states
-- wait in `pending` until then; a structured strategy writes at once and is undone.
-- When any refuses, only what refusals themselves changed is written. This is the
-- in-memory backend's apply_many, in one atomic step. Replies with one status line of
-- six values per limit; a refund (each cost given back in turn) replies 1.
local op = ARGV[1]
local now, padding = read_clock(op)
local mode = string.byte(op)

if mode == 114 then
  for index = 1, #KEYS do
    local key, at = KEYS[index], index * 3 - 1
    local strategy, cost, spec = STRATEGIES[ARGV[at]], tonumber(ARGV[at + 1]), ARGV[at + 2]
    if strategy.structured then
      strategy.refund(key, now, cost, spec, padding)
    else
      local new_state, ttl = strategy.refund(redis.call("GET", key), now, cost, spec)
      if new_state ~= nil then
        store(key, new_state, ttl, padding)
      end
    end
  end
  return 1
end

local write = mode == 97
local pending = {} -- key -> {state, ttl}: what the allowed limits would write
local order = {}
local refusals = {} -- {key, state, ttl}: what refusals themselves changed
local undo = {} -- {strategy, key, token}: structured writes to take back
local all_allowed = true
local reply = {}
for index = 1, #KEYS do
  local key, at = KEYS[index], index * 3 - 1
  local strategy, cost, spec = STRATEGIES[ARGV[at]], tonumber(ARGV[at + 1]), ARGV[at + 2]
  local allowed, limit, remaining, reset, retry, delay
  if strategy.structured then
    local token
    allowed, limit, remaining, reset, retry, delay, token =
      strategy.decide(key, now, cost, spec, write, padding)
    if token ~= nil then
      undo[#undo + 1] = {strategy, key, token}
    end
  else
    local entry = pending[key]
    local state
    if entry then
      state = entry[1]
    else
      state = redis.call("GET", key)
    end
    local new_state, ttl
    new_state, ttl, allowed, limit, remaining, reset, retry, delay =
      strategy.decide(state, now, cost, spec)
    if new_state ~= nil then
      if allowed then
        if not entry then
          order[#order + 1] = key
        end
        pending[key] = {new_state, ttl}
      elseif not entry then
        refusals[#refusals + 1] = {key, new_state, ttl}
      end
    end
  end
  all_allowed = all_allowed and allowed
  reply[index] = outcome(allowed, limit, remaining, reset, retry, delay)
end

if write then
  if all_allowed then
    for _, key in ipairs(order) do
      store(key, pending[key][1], pending[key][2], padding)
    end
  else
    for index = #undo, 1, -1 do
      local taken = undo[index]
      taken[1].undo(taken[2], taken[3])
    end
    for _, refusal in ipairs(refusals) do
      store(refusal[1], refusal[2], refusal[3], padding)
    end
  end
end
return {ok = table.concat(reply, ",")}
