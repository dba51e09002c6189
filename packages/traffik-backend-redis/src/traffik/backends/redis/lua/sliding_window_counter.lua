-- SlidingWindowCounter (traffik.strategies.sliding_window_counter), line by line.
-- Spec "limit,period". State "window,previous,current". A count times a time may pass
-- 2^53: those products go through muldiv, exactly.

-- (window, now, previous, current) as seen from now.
local function counter_counts(state, now, period)
  local stored_window, stored_previous, stored_current = decode3(state)
  local window
  window, now = aligned(now, period, stored_window)
  if stored_window == window then
    return window, now, stored_previous, stored_current
  end
  if stored_window == window - 1 then
    return window, now, stored_current, 0
  end
  return window, now, 0, 0
end

local function counter_reset(previous, current, elapsed, period)
  if current > 0 then
    return 2 * period - elapsed
  end
  if previous > 0 then
    return period - elapsed
  end
  return 0
end

-- The first millisecond at which cost would pass, from a refusal now.
local function counter_retry(previous, current, cost, elapsed, limit, period)
  local slack = limit - current - cost
  if slack >= 0 then -- passes later in this window, as the previous one fades?
    local admitted_at = period - muldiv(slack, period, previous) -- slack < previous here
    if admitted_at < period then
      return admitted_at - elapsed
    end
  end
  -- In the next window, ours becomes the previous one.
  local admitted_at = 0
  if current ~= 0 and limit - cost < current then -- (else the quotient is >= period)
    admitted_at = max(0, period - muldiv(limit - cost, period, current))
  end
  if admitted_at < period then
    return period - elapsed + admitted_at
  end
  return 2 * period - elapsed
end

STRATEGIES.sliding_window_counter = {
  decide = function(state, now, cost, spec)
    local limit, period = match(spec, "^(%d+),(%d+)$")
    limit, period = tonumber(limit), tonumber(period)
    local window, previous, current
    window, now, previous, current = counter_counts(state, now, period)
    local elapsed = now - window * period
    local faded, rest = muldiv(previous, period - elapsed, period)
    if rest > 0 then
      faded = faded + 1 -- rounded up
    end
    local fits = cost > 0 and cost <= limit and current + cost + faded <= limit
    local new_state = nil
    if fits then
      current = current + cost
      new_state = format("%d,%d,%d", window, previous, current)
    end
    local remaining = max(0, limit - current - faded)
    local reset = counter_reset(previous, current, elapsed, period)
    if fits or cost == 0 then
      return new_state, max(reset, 1), true, limit, remaining, reset, 0, 0
    end
    local retry = NEVER
    if cost <= limit then
      retry = counter_retry(previous, current, cost, elapsed, limit, period)
    end
    return nil, max(reset, 1), false, limit, remaining, reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    if not state then
      return nil, 1
    end
    local period = tonumber(match(spec, ",(%d+)$"))
    local window, previous, current
    window, now, previous, current = counter_counts(state, now, period)
    local taken = min(cost, current)
    current = current - taken
    previous = max(0, previous - (cost - taken))
    local reset = counter_reset(previous, current, now - window * period, period)
    if reset == 0 then
      return false, 1
    end
    return format("%d,%d,%d", window, previous, current), reset
  end,
}
