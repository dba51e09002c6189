-- TokenBucket and TokenBucketWithDebt (traffik.strategies.token_bucket), line by line.
-- Spec "limit,period,capacity,max_debt": the rate in lowest terms (max_debt 0 for
-- TokenBucket). State "level,last" with level in 1/period tokens.
local function token_bucket_spec(spec)
  local limit, period, capacity, debt = match(spec, "^(%d+),(%d+),(%d+),(%d+)$")
  return tonumber(limit), tonumber(period), tonumber(capacity), tonumber(debt)
end

STRATEGIES.token_bucket = {
  decide = function(state, now, cost, spec)
    local limit, period, capacity, debt = token_bucket_spec(spec)
    local full = capacity * period
    local bottom = -debt * period
    local level, last = decode2(state)
    if level == nil then
      level, last = full, now
    else
      level, last = refill(level, last, now, limit, full)
    end
    local reset = ceil_div(full - level, limit)
    local spendable = capacity + debt
    if cost == 0 then
      return nil, keep_for(reset, last, now), true, spendable, idiv(level - bottom, period), reset, 0, 0
    end
    local need = cost * period
    if cost <= spendable and level - need >= bottom then
      level = level - need
      reset = ceil_div(full - level, limit)
      return format("%d,%d", level, last), keep_for(reset, last, now), true, spendable,
        idiv(level - bottom, period), reset, 0, 0
    end
    local retry = NEVER
    if cost <= spendable then
      retry = ceil_div(need + bottom - level, limit)
    end
    return nil, keep_for(reset, last, now), false, spendable, idiv(level - bottom, period), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local level, last = decode2(state)
    if level == nil then
      return nil, 1 -- a missing bucket is already full
    end
    local limit, period, capacity = token_bucket_spec(spec)
    local full = capacity * period
    level, last = refill(level, last, now, limit, full)
    level = min(full, level + cost * period)
    return format("%d,%d", level, last), keep_for(ceil_div(full - level, limit), last, now)
  end,
}
