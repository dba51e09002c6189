-- PriorityQueue (traffik.strategies.priority_queue), line by line. Spec
-- "limit,period,max_queue_size,priority" with the request's priority (1-4) resolved in
-- Python. State "window,u1,u2,u3,u4": units admitted per priority this window.
local function priority_spec(spec)
  local limit, period, queue, priority = match(spec, "^(%d+),(%d+),(%d+),(%d)$")
  return tonumber(limit), tonumber(period), tonumber(queue), tonumber(priority)
end

-- The stored window and its four usages, or nil.
local function priority_decode(state)
  if state then
    local w, a, b, c, d = match(state, "^(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+)$")
    if w then
      return tonumber(w), {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
    end
  end
  return nil
end

STRATEGIES.priority_queue = {
  decide = function(state, now, cost, spec)
    local limit, period, queue, priority = priority_spec(spec)
    local stored_window, stored_usage = priority_decode(state)
    local window
    window, now = aligned(now, period, stored_window)
    local usage = {0, 0, 0, 0}
    if stored_window == window then
      usage = stored_usage
    end
    local seen = 0
    for index = priority, 4 do
      seen = seen + usage[index]
    end
    local total = usage[1] + usage[2] + usage[3] + usage[4]
    local reset = (window + 1) * period - now
    if cost == 0 or (seen + cost <= limit and total + cost <= queue) then
      local new_state = nil
      if cost > 0 then
        usage[priority] = usage[priority] + cost
        new_state = format("%d,%d,%d,%d,%d", window, usage[1], usage[2], usage[3], usage[4])
      end
      local remaining = max(0, min(limit - seen, queue - total) - cost)
      return new_state, reset, true, limit, remaining, reset, 0, 0
    end
    local retry = reset
    if cost > min(limit, queue) then
      retry = NEVER
    end
    return nil, reset, false, limit, max(0, min(limit - seen, queue - total)), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local stored_window, usage = priority_decode(state)
    if stored_window == nil then
      return nil, 1
    end
    local _, period, _, priority = priority_spec(spec)
    local window
    window, now = aligned(now, period, stored_window)
    if stored_window ~= window then
      return nil, 1 -- that window has closed: nothing to give back
    end
    usage[priority] = max(usage[priority] - cost, 0)
    return format("%d,%d,%d,%d,%d", window, usage[1], usage[2], usage[3], usage[4]),
      (window + 1) * period - now
  end,
}
