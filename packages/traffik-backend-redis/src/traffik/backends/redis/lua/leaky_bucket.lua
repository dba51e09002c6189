-- LeakyBucket (a meter) and LeakyBucketWithQueue (traffik.strategies.leaky_bucket), line
-- by line. Spec "limit,period,capacity,queue": the rate in lowest terms (queue 1:
-- admitted requests are told to wait their turn). State "level,last" with level in
-- 1/period units.
local function leaky_bucket_spec(spec)
  local limit, period, capacity, queue = match(spec, "^(%d+),(%d+),(%d+),(%d)$")
  return tonumber(limit), tonumber(period), tonumber(capacity), queue == "1"
end

STRATEGIES.leaky_bucket = {
  decide = function(state, now, cost, spec)
    local limit, period, capacity, queue = leaky_bucket_spec(spec)
    local cap = capacity * period
    local level, last = decode2(state)
    if level == nil then
      level, last = 0, now
    else
      level, last = drain(level, last, now, limit)
    end
    if cost == 0 then
      local reset = ceil_div(level, limit)
      return nil, keep_for(reset, last, now), true, capacity, idiv(cap - level, period), reset, 0, 0
    end
    local need = cost * period
    if cost <= capacity and level + need <= cap then
      local delay = 0
      if queue then
        delay = ceil_div(level, limit)
      end
      level = level + need
      local reset = ceil_div(level, limit)
      return format("%d,%d", level, last), keep_for(reset, last, now), true, capacity,
        idiv(cap - level, period), reset, 0, delay
    end
    local reset = ceil_div(level, limit)
    local retry = NEVER
    if cost <= capacity then
      retry = ceil_div(level + need - cap, limit)
    end
    return nil, keep_for(reset, last, now), false, capacity, idiv(cap - level, period), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local level, last = decode2(state)
    if level == nil then
      return nil, 1 -- a missing bucket is already empty
    end
    local limit, period = leaky_bucket_spec(spec)
    level, last = drain(level, last, now, limit)
    level = max(0, level - cost * period)
    return format("%d,%d", level, last), keep_for(ceil_div(level, limit), last, now)
  end,
}
