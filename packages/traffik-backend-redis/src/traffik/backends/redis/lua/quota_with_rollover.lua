-- QuotaWithRollover (traffik.strategies.quota_with_rollover), line by line. Spec
-- "limit,period,max_rollover,pn,pd" with the rollover percentage pn/pd as an exact
-- fraction. State "window,used,rollover".
local function quota_spec(spec)
  local limit, period, most, pn, pd = match(spec, "^(%d+),(%d+),(%d+),(%d+),(%d+)$")
  return tonumber(limit), tonumber(period), tonumber(most), tonumber(pn), tonumber(pd)
end

STRATEGIES.quota_with_rollover = {
  decide = function(state, now, cost, spec)
    local limit, period, most, pn, pd = quota_spec(spec)
    local function carry(used)
      return min(most, idiv(max(0, limit - used) * pn, pd))
    end
    local stored_window, stored_used, stored_rollover = decode3(state)
    local window
    window, now = aligned(now, period, stored_window)
    local used, rollover = 0, 0
    if stored_window == window then
      used, rollover = stored_used, stored_rollover
    elseif stored_window == window - 1 then
      rollover = carry(stored_used)
    end
    local quota = limit + rollover
    local reset = (window + 1) * period - now
    local ttl = reset + period
    if cost == 0 or used + cost <= quota then
      local new_state = nil
      if cost > 0 then
        new_state = format("%d,%d,%d", window, used + cost, rollover)
      end
      return new_state, ttl, true, quota, max(0, quota - used - cost), reset, 0, 0
    end
    -- Refusals write nothing: only a state of this period gives the next one a rollover.
    local following = limit
    if stored_window == window then
      following = limit + carry(used)
    end
    local retry = NEVER
    if cost <= following then
      retry = reset
    end
    return nil, ttl, false, quota, max(0, quota - used), reset, retry, 0
  end,

  refund = function(state, now, cost, spec)
    local stored_window, stored_used, stored_rollover = decode3(state)
    if stored_window == nil then
      return nil, 1
    end
    local _, period = quota_spec(spec)
    local window
    window, now = aligned(now, period, stored_window)
    if stored_window ~= window then
      return nil, 1 -- that period has closed: nothing to give back
    end
    return format("%d,%d,%d", window, max(stored_used - cost, 0), stored_rollover),
      (window + 1) * period - now + period
  end,
}
