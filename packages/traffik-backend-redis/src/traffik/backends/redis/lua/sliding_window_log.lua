-- SlidingWindowLog (traffik.strategies.sliding_window_log) as a Redis list, amortised
-- O(1) per hit. Spec "limit,period".
--
-- The key holds one list entry "time,cost,total" per admitted request (entries of the
-- same millisecond merged), oldest first, where total is the running sum of the costs
-- admitted into this list so far, this entry's included. So the usage of the live
-- entries is tail.total - head.total + head.cost, from the two ends alone. Expired
-- entries are popped from the head (each once, whatever decides: an admission, a
-- refusal or a peek), admissions push at the tail. The decisions are the Python
-- strategy's: time never runs backwards for a log (now = max(now, newest entry)), so an
-- entry that has left the window never counts again. (Under an injected clock moved
-- backwards by more than the newest entry allows, an entry popped by a refusal or a peek
-- stays gone where the Python strategy, which stores nothing then, would still see it.)

local function log_entry(text)
  local time, cost, total = match(text, "^(%d+),(%d+),(%d+)$")
  return tonumber(time), tonumber(cost), tonumber(total)
end

-- The newest entry and its fields, or false when there is none. A key holding anything
-- but a list of entries (another version's state) is deleted: the log starts afresh.
local function log_tail(key)
  local tail = redis.pcall("LINDEX", key, -1)
  if not tail then
    return false
  end
  if type(tail) ~= "table" then
    local time, cost, total = log_entry(tail)
    if time then
      return tail, time, cost, total
    end
  end
  redis.call("DEL", key)
  return false
end

-- Pops the entries at or before threshold from the head; the head left (time, cost,
-- total), or nil when nothing is left (Redis deletes an emptied list).
local function log_trim(key, threshold)
  local from, batch = 0, 2 -- two at first: none expired, or one (the usual cases)
  while true do
    local entries = redis.call("LRANGE", key, from, from + batch - 1)
    for index = 1, #entries do
      local time, cost, total = log_entry(entries[index])
      if time > threshold then
        local expired = from + index - 1
        if expired > 0 then
          redis.call("LTRIM", key, expired, -1)
        end
        return time, cost, total
      end
    end
    if #entries < batch then
      redis.call("DEL", key)
      return nil
    end
    from, batch = from + batch, batch * 2
  end
end

-- The time of the entry at which the oldest live costs add up to need (<= the usage).
local function log_time_freeing(key, need)
  local from, batch, freed = 0, 4, 0
  while true do
    local entries = redis.call("LRANGE", key, from, from + batch - 1)
    for index = 1, #entries do
      local time, cost = log_entry(entries[index])
      freed = freed + cost
      if freed >= need then
        return time
      end
    end
    from, batch = from + batch, batch * 2
  end
end

local function log_spec(spec)
  local limit, period = match(spec, "^(%d+),(%d+)$")
  return tonumber(limit), tonumber(period)
end

STRATEGIES.sliding_window_log = {
  structured = true,

  -- Decides on the key itself; with write, an admission is pushed at once. Returns the
  -- decision and, when it wrote, what `undo` needs to take the admission back.
  decide = function(key, now, cost, spec, write, padding)
    local limit, period = log_spec(spec)
    local tail, tail_time, tail_cost, tail_total = log_tail(key)
    local live = 0
    if tail then
      now = max(now, tail_time)
      local _, head_cost, head_total = log_trim(key, now - period)
      if head_cost then
        live = tail_total - head_total + head_cost
      else
        tail, tail_total = false, 0
      end
    else
      tail_total = 0
    end
    if cost > 0 and cost <= limit and live + cost <= limit then
      local token = nil
      if write then
        if tail and tail_time == now then
          redis.call("LSET", key, -1,
            format("%d,%d,%d", now, tail_cost + cost, tail_total + cost))
          token = tail
        else
          redis.call("RPUSH", key, format("%d,%d,%d", now, cost, tail_total + cost))
          token = false
        end
        redis.call("PEXPIRE", key, period + padding)
      end
      return true, limit, limit - live - cost, period, 0, 0, token
    end
    local reset = 0
    if live > 0 then
      reset = tail_time + period - now
    end
    local retry = 0
    if cost > limit then
      retry = NEVER
    elseif cost > 0 then
      -- The oldest entries must leave until live + cost - limit units have gone with them.
      retry = log_time_freeing(key, live + cost - limit) + period - now
    end
    return cost == 0, limit, limit - live, reset, retry, 0, nil
  end,

  -- Takes back an admission `decide` wrote: restores the newest entry it merged into,
  -- or pops the entry it pushed.
  undo = function(key, token)
    if token then
      redis.call("LSET", key, -1, token)
    else
      redis.call("RPOP", key)
    end
  end,

  -- Removes cost units from the newest live entries (partially from the last one).
  refund = function(key, now, cost, spec, padding)
    local _, period = log_spec(spec)
    local tail, tail_time, tail_cost, tail_total = log_tail(key)
    if not tail then
      return
    end
    now = max(now, tail_time)
    if not log_trim(key, now - period) then
      return -- every entry had left the window
    end
    local owed = cost
    while tail_cost <= owed do
      owed = owed - tail_cost
      redis.call("RPOP", key)
      tail = redis.call("LINDEX", key, -1)
      if not tail then
        return -- nothing live is left (the emptied list is gone)
      end
      tail_time, tail_cost, tail_total = log_entry(tail)
    end
    if owed > 0 then
      redis.call("LSET", key, -1,
        format("%d,%d,%d", tail_time, tail_cost - owed, tail_total - owed))
    end
    redis.call("PEXPIRE", key, tail_time + period - now + padding)
  end,
}
