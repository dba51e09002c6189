-- TokenBucket (traffik.strategies.token_bucket): capacity args[1], refilled at limit per
-- period, counted in 1/period fractions of a token. State "level,last_refill_ms".
-- Mirrors TokenBucket.decide / TokenBucket.refund line by line.
STRATEGIES.token_bucket = {
  decide = function(state, now, limit, period, cost, args)
    local capacity = tonumber(args[1])
    local full = capacity * period
    local level, last = decode_pair(state)
    if level == nil then
      level, last = full, now
    elseif now > last then
      level = math.min(full, level + (now - last) * limit)
      last = now
    end
    local need = cost * period
    if level >= need then
      level = level - need
      local reset_ms = ceil_div(full - level, limit)
      return encode_pair(level, last), true, capacity, idiv(level, period),
        reset_ms / 1000, 0, 0, math.max(reset_ms, 1)
    end
    local reset_ms = ceil_div(full - level, limit)
    local retry_after = INF
    if cost <= capacity then
      retry_after = ceil_div(need - level, limit) / 1000
    end
    return UNCHANGED, false, capacity, idiv(level, period),
      reset_ms / 1000, retry_after, 0, math.max(reset_ms, 1)
  end,

  refund = function(state, now, limit, period, cost, args)
    local level, last = decode_pair(state)
    if level == nil then
      return UNCHANGED, 1 -- a missing bucket is already full
    end
    local full = tonumber(args[1]) * period
    if now > last then
      level, last = math.min(full, level + (now - last) * limit), now
    end
    level = math.min(full, level + cost * period)
    return encode_pair(level, last), math.max(ceil_div(full - level, limit), 1)
  end,
}
