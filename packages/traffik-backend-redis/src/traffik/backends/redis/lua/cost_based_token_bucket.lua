-- CostBasedTokenBucket (traffik.strategies.cost_based_token_bucket), line by line. Spec
-- "l,p,capacity,cost_window,floor_m": the rate as l tokens per p ms in lowest terms, and
-- the lowest refill multiplier in thousandths. State "level,last,average,count" with
-- level in 1/(1000 p) tokens and average in thousandths of a unit.
local cost_bucket = {}

local function cost_bucket_spec(spec)
  local tokens, period, capacity, window, lowest = match(spec, "^(%d+),(%d+),(%d+),(%d+),(%d+)$")
  local unit = tonumber(period) * 1000
  cost_bucket.tokens, cost_bucket.unit = tonumber(tokens), unit
  cost_bucket.capacity, cost_bucket.full = tonumber(capacity), tonumber(capacity) * unit
  cost_bucket.window, cost_bucket.lowest = tonumber(window), tonumber(lowest)
  return cost_bucket
end

-- The refill multiplier in thousandths for a history of count samples.
local function multiplier(average, count)
  if count == 0 or average <= 1000 then
    return 1000
  end
  return max(cost_bucket.lowest, idiv(1000000, average))
end

local function cost_bucket_decode(state)
  if state then
    local a, b, c, d = match(state, "^(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+)$")
    if a then
      return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    end
  end
  return nil
end

-- The stored bucket refilled to now; a full bucket forgets its history.
local function cost_bucket_refilled(level, last, average, count, now)
  local b = cost_bucket
  level, last = refill(level, last, now, b.tokens * multiplier(average, count), b.full)
  if level >= b.full then
    return b.full, last, 0, 0
  end
  return level, last, average, count
end

STRATEGIES.cost_based_token_bucket = {
  decide = function(state, now, cost, spec)
    local b = cost_bucket_spec(spec)
    local level, last, average, count = cost_bucket_decode(state)
    if level == nil then
      level, last, average, count = b.full, now, 0, 0
    else
      level, last, average, count = cost_bucket_refilled(level, last, average, count, now)
    end
    local per_ms = b.tokens * multiplier(average, count)
    local need = cost * b.unit
    if cost == 0 or (cost <= b.capacity and level >= need) then
      local new_state = nil
      if cost > 0 then
        level = level - need
        count = min(count + 1, b.window)
        average = average + idiv(cost * 1000 - average, count)
        per_ms = b.tokens * multiplier(average, count)
        new_state = format("%d,%d,%d,%d", level, last, average, count)
      end
      local reset = ceil_div(b.full - level, per_ms)
      return new_state, keep_for(reset, last, now), true, b.capacity, idiv(level, b.unit), reset, 0, 0
    end
    local reset = ceil_div(b.full - level, per_ms)
    local retry = NEVER
    if cost <= b.capacity then
      retry = ceil_div(need - level, per_ms)
    end
    return nil, keep_for(reset, last, now), false, b.capacity, idiv(level, b.unit), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local level, last, average, count = cost_bucket_decode(state)
    if level == nil then
      return nil, 1
    end
    local b = cost_bucket_spec(spec)
    level, last, average, count = cost_bucket_refilled(level, last, average, count, now)
    level = min(b.full, level + cost * b.unit)
    if level >= b.full then
      return false, 1 -- full, history forgotten: the same as no state
    end
    local per_ms = b.tokens * multiplier(average, count)
    return format("%d,%d,%d,%d", level, last, average, count),
      keep_for(ceil_div(b.full - level, per_ms), last, now)
  end,
}
