-- Concurrency (traffik.strategies.concurrency), line by line: limit slots, each leased
-- for period ms. Spec "limit,period,retry_after_ms". State: the sorted lease expiry
-- times, "e1,e2,...".

-- The leases still running at now, and where the first of them starts in the state
-- (the state is sorted, so the running leases are a suffix of it).
local function live_leases(state, now)
  local leases = {}
  local from = nil
  if state then
    for position, text in string.gmatch(state, "()(%-?%d+)") do
      local expiry = tonumber(text)
      if expiry > now then
        leases[#leases + 1] = expiry
        from = from or position
      end
    end
  end
  return leases, from
end

local function encode_leases(leases, first)
  local parts = {}
  for index = first, #leases do
    parts[#parts + 1] = format("%d", leases[index])
  end
  return table.concat(parts, ",")
end

-- Nothing left to keep: delete what the key holds (nil, unchanged, when it holds nothing).
local function forget(state)
  if state then
    return false
  end
  return nil
end

local function concurrency_spec(spec)
  local limit, lease, hint = match(spec, "^(%d+),(%d+),(%d+)$")
  return tonumber(limit), tonumber(lease), tonumber(hint)
end

STRATEGIES.concurrency = {
  decide = function(state, now, cost, spec)
    local limit, lease, hint = concurrency_spec(spec)
    local leases, from = live_leases(state, now)
    local held = #leases
    if held + cost <= limit then
      local expiry = now + lease
      local new_state
      if held == 0 then
        if cost == 0 then -- nothing to keep
          return forget(state), 1, true, limit, limit, 0, 0, 0
        end
        new_state = format("%d", expiry) .. string.rep("," .. format("%d", expiry), cost - 1)
      elseif leases[held] <= expiry then -- the usual case: the new leases end last
        new_state = string.sub(state, from) .. string.rep("," .. format("%d", expiry), cost)
      else -- a clock that went back: insert in order, after equal expiries
        local position = held + 1
        while position > 1 and leases[position - 1] > expiry do
          position = position - 1
        end
        for _ = 1, cost do
          table.insert(leases, position, expiry)
        end
        new_state = encode_leases(leases, 1)
      end
      local last = expiry
      if cost == 0 then
        last = leases[held]
      elseif held > 0 then
        last = max(leases[#leases], expiry)
      end
      last = last - now
      return new_state, last, true, limit, limit - held - cost, last, 0, 0
    end
    local retry = NEVER
    if cost <= limit then
      -- The (held + cost - limit)-th lease to run out frees the last slot needed.
      retry = min(hint, leases[held + cost - limit] - now)
    end
    local last = 1
    if held > 0 then
      last = leases[held] - now
    end
    return nil, max(last, 1), false, limit, limit - held, last, retry, 0
  end,

  refund = function(state, now, cost)
    local leases = live_leases(state, now)
    if #leases <= cost then
      return forget(state), 1
    end
    return encode_leases(leases, cost + 1), leases[#leases] - now
  end,
}
