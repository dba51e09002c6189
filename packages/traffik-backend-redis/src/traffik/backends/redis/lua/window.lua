-- Clock-aligned windows, shared by the window strategies (traffik.strategies._support
-- aligned_window and fixed_window.decide_window / refund_window).

-- The window now falls in, and now itself, never before the state's window: a state
-- written by a clock running ahead is decided in its own window, at its start.
local function aligned(now, period, state_window)
  local window = idiv(now, period)
  if state_window and state_window > window then
    return state_window, state_window * period
  end
  return window, now
end

-- FixedWindow's decision for a given (possibly scaled) limit. State "window,used".
local function decide_window(state, now, period, limit, cost)
  local stored_window, stored_used = decode2(state)
  local window
  window, now = aligned(now, period, stored_window)
  local used = 0
  if stored_window == window then
    used = stored_used
  end
  local reset = (window + 1) * period - now
  if cost == 0 then
    return nil, reset, true, limit, max(limit - used, 0), reset, 0, 0
  end
  if used + cost <= limit then
    used = used + cost
    return format("%d,%d", window, used), reset, true, limit, limit - used, reset, 0, 0
  end
  local retry = reset
  if cost > limit then
    retry = NEVER
  end
  return nil, reset, false, limit, max(limit - used, 0), reset, retry, 0
end

-- Gives units back within the same window only.
local function refund_window(state, now, period, cost)
  local stored_window, stored_used = decode2(state)
  if stored_window == nil then
    return nil, 1
  end
  local window
  window, now = aligned(now, period, stored_window)
  if stored_window ~= window then
    return nil, 1 -- that window has closed: nothing to give back
  end
  return format("%d,%d", window, max(stored_used - cost, 0)), (window + 1) * period - now
end
