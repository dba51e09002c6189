-- FixedWindow (traffik.strategies.fixed_window), and TieredRate, whose limit for the
-- request's tier is resolved in Python. Spec "limit,period".
STRATEGIES.fixed_window = {
  decide = function(state, now, cost, spec)
    local limit, period = match(spec, "^(%d+),(%d+)$")
    return decide_window(state, now, tonumber(period), tonumber(limit), cost)
  end,

  refund = function(state, now, cost, spec)
    return refund_window(state, now, tonumber(match(spec, ",(%d+)$")), cost)
  end,
}
