-- TimeOfDay (traffik.strategies.time_of_day), line by line. Spec
-- "period,offset_ms,width,limits": limits is the 24 hourly limits (already scaled by each
-- hour's multiplier in Python), each written in width digits, hour 0 first, so that the
-- limit of one hour is read without splitting the rest. State "window,used".
local HOUR_MS = 3600000
local time_of_day = {}

local function time_of_day_spec(spec)
  local period, offset, width, limits = match(spec, "^(%d+),(%-?%d+),(%d+),(%d+)$")
  time_of_day.offset, time_of_day.width, time_of_day.limits =
    tonumber(offset), tonumber(width), limits
  return tonumber(period)
end

-- The limit in force at t.
local function limit_at(t)
  local width = time_of_day.width
  local hour = idiv(t + time_of_day.offset, HOUR_MS) % 24
  return tonumber(string.sub(time_of_day.limits, hour * width + 1, (hour + 1) * width))
end

local function next_hour(t)
  local offset = time_of_day.offset
  return (idiv(t + offset, HOUR_MS) + 1) * HOUR_MS - offset
end

-- The first moment a refused cost fits: later in this window if the limit rises, else
-- at the window's end or the first hour after it whose limit fits; nil for never.
local function time_of_day_retry(now, window_end, used, cost)
  local boundary = now
  for _ = 1, 24 do
    boundary = next_hour(boundary)
    if boundary >= window_end then
      break
    end
    if used + cost <= limit_at(boundary) then
      return boundary - now
    end
  end
  if cost <= limit_at(window_end) then
    return window_end - now
  end
  boundary = window_end
  for _ = 1, 24 do
    boundary = next_hour(boundary)
    if cost <= limit_at(boundary) then
      return boundary - now
    end
  end
  return nil
end

STRATEGIES.time_of_day = {
  decide = function(state, now, cost, spec)
    local period = time_of_day_spec(spec)
    local stored_window, stored_used = decode2(state)
    local window
    window, now = aligned(now, period, stored_window)
    local new_state, ttl, allowed, limit, remaining, reset, retry, delay =
      decide_window(state, now, period, limit_at(now), cost)
    if not allowed then
      local used = 0
      if stored_window == window then
        used = stored_used
      end
      retry = time_of_day_retry(now, (window + 1) * period, used, cost) or NEVER
    end
    return new_state, ttl, allowed, limit, remaining, reset, retry, delay
  end,

  refund = function(state, now, cost, spec)
    return refund_window(state, now, time_of_day_spec(spec), cost)
  end,
}
