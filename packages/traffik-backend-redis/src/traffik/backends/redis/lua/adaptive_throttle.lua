-- AdaptiveThrottle (traffik.strategies.adaptive_throttle), line by line. Spec
-- "limit,period,floor,step,tn,td,rn,rd": the floor and recovery step resolved in Python,
-- the load threshold tn/td and the reduction factor rn/rd as exact fractions.
-- State "window,used,effective".
-- The spec of the call being decided, read once per call (no table to allocate).
local adaptive = {}

local function adaptive_spec(spec)
  local limit, period, lowest, step, tn, td, rn, rd =
    match(spec, "^(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+)$")
  adaptive.limit, adaptive.period = tonumber(limit), tonumber(period)
  adaptive.lowest, adaptive.step = tonumber(lowest), tonumber(step)
  adaptive.tn, adaptive.td, adaptive.rn, adaptive.rd =
    tonumber(tn), tonumber(td), tonumber(rn), tonumber(rd)
  return adaptive
end

-- The next window's limit after a window with used out of effective.
local function adaptive_rollover(p, effective, used)
  if used * p.td > effective * p.tn then
    return max(p.lowest, idiv(effective * p.rn, p.rd))
  end
  return min(p.limit, effective + p.step)
end

-- (window, now, used, effective, stored_window) as seen from now.
local function adaptive_standing(p, state, now)
  local stored_window, stored_used, stored_effective = decode3(state)
  local window
  window, now = aligned(now, p.period, stored_window)
  if stored_window == nil then
    return window, now, 0, p.limit, nil
  end
  local effective = min(stored_effective, p.limit)
  if stored_window == window then
    return window, now, stored_used, effective, stored_window
  end
  local idle = min(window - stored_window - 1, p.limit)
  effective = adaptive_rollover(p, effective, stored_used) + idle * p.step
  return window, now, 0, min(p.limit, effective), stored_window
end

STRATEGIES.adaptive_throttle = {
  decide = function(state, now, cost, spec)
    local p = adaptive_spec(spec)
    local window, used, effective
    window, now, used, effective = adaptive_standing(p, state, now)
    local reset = (window + 1) * p.period - now
    if cost == 0 or (cost <= p.limit and used + cost <= effective) then
      local new_state = nil
      if cost > 0 then
        new_state = format("%d,%d,%d", window, used + cost, effective)
      end
      used = used + cost
      local ttl = reset
        + ceil_div(p.limit - adaptive_rollover(p, effective, used), p.step) * p.period
      return new_state, ttl, true, effective, max(effective - used, 0), reset, 0, 0
    end
    local following = adaptive_rollover(p, effective, used)
    local retry
    if cost > p.limit then
      retry = NEVER
    elseif cost <= following then
      retry = reset
    else
      retry = reset + ceil_div(cost - following, p.step) * p.period
    end
    local ttl = reset + ceil_div(p.limit - following, p.step) * p.period
    return nil, ttl, false, effective, max(effective - used, 0), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local p = adaptive_spec(spec)
    local window, used, effective, stored_window
    window, now, used, effective, stored_window = adaptive_standing(p, state, now)
    if stored_window ~= window then
      return nil, 1 -- no state, or that window has closed: nothing to give back
    end
    used = max(used - cost, 0)
    local reset = (window + 1) * p.period - now
    local following = adaptive_rollover(p, effective, used)
    return format("%d,%d,%d", window, used, effective),
      reset + ceil_div(p.limit - following, p.step) * p.period
  end,
}
