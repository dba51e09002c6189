-- FixedWindow (traffik.strategies.fixed_window): a counter per clock-aligned window.
-- State "window_index,used". Mirrors FixedWindow.decide / FixedWindow.refund line by line.
STRATEGIES.fixed_window = {
  decide = function(state, now, limit, period, cost, args)
    local window = idiv(now, period)
    local used = 0
    local stored_window, stored_used = decode_pair(state)
    if stored_window == window then
      used = stored_used
    end
    local reset_ms = (window + 1) * period - now
    local reset_after = reset_ms / 1000
    if used + cost <= limit then
      used = used + cost
      return encode_pair(window, used), true, limit, limit - used, reset_after, 0, 0, reset_ms
    end
    local retry_after = reset_after
    if cost > limit then
      retry_after = INF
    end
    return UNCHANGED, false, limit, limit - used, reset_after, retry_after, 0, reset_ms
  end,

  refund = function(state, now, limit, period, cost, args)
    local window = idiv(now, period)
    local stored_window, stored_used = decode_pair(state)
    if stored_window == nil or stored_window ~= window then
      return UNCHANGED, 1 -- that window has closed: nothing to give back
    end
    return encode_pair(window, math.max(stored_used - cost, 0)), (window + 1) * period - now
  end,
}
