-- GCRA (traffik.strategies.gcra), line by line. Spec "limit,period,burst_tolerance_ms",
-- the rate in lowest terms.
-- State "level,last" where level = (TAT - last) * limit.
local function gcra_spec(spec)
  local limit, period, tolerance = match(spec, "^(%d+),(%d+),(%d+)$")
  return tonumber(limit), tonumber(period), tonumber(tolerance)
end

STRATEGIES.gcra = {
  decide = function(state, now, cost, spec)
    local limit, period, tolerance = gcra_spec(spec)
    local cap = tolerance * limit + period
    local burst = idiv(cap, period)
    local level, last = decode2(state)
    if level == nil then
      level, last = 0, now
    else
      level, last = drain(level, last, now, limit)
    end
    local need = cost * period
    if cost == 0 or (cost <= burst and level + need <= cap) then
      level = level + need
      local reset = ceil_div(level, limit)
      local new_state = nil
      if cost > 0 then
        new_state = format("%d,%d", level, last)
      end
      return new_state, keep_for(reset, last, now), true, burst, idiv(cap - level, period), reset, 0, 0
    end
    local reset = ceil_div(level, limit)
    local retry = NEVER
    if cost <= burst then
      retry = ceil_div(level + need - cap, limit)
    end
    return nil, keep_for(reset, last, now), false, burst, idiv(cap - level, period), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local level, last = decode2(state)
    if level == nil then
      return nil, 1
    end
    local limit, period = gcra_spec(spec)
    level, last = drain(level, last, now, limit)
    level = max(0, level - cost * period)
    return format("%d,%d", level, last), keep_for(ceil_div(level, limit), last, now)
  end,
}
