-- Bucket levels moving linearly with time (traffik.strategies._bucket): stopped at their
-- bound before multiplying, so that elapsed * per_ms stays small however old the state.
-- Time never runs backwards for a bucket: when now is before last, nothing moves.

local function refill(level, last, now, per_ms, full)
  if now <= last then
    return level, last
  end
  local gap = full - level
  if gap <= 0 or now - last >= ceil_div(gap, per_ms) then
    return max(level, full), now
  end
  return level + (now - last) * per_ms, now
end

local function drain(level, last, now, per_ms)
  if now <= last then
    return level, last
  end
  if level <= 0 or now - last >= ceil_div(level, per_ms) then
    return min(level, 0), now
  end
  return level - (now - last) * per_ms, now
end

-- How long a bucket's state must be kept: until it is full (or empty) again, counted from
-- its own clock. When now lags last (a clock behind the state's), the bucket only starts
-- moving at last, so the wait is longer by that lag.
local function keep_for(wait, last, now)
  local lag = 0
  if last > now then
    lag = last - now
  end
  return max(wait + lag, 1)
end
