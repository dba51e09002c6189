-- Traffik decision scripts, part 1: helpers every strategy may use.
--
-- A script is composed from this prelude, the helper files its strategies need
-- (window.lua, bucket.lua), one file per strategy and a dispatcher (single.lua for one
-- key, many.lua for several). Each strategy file adds one entry to STRATEGIES:
--
--   STRATEGIES.<name> = {
--     -- a state kept in one string key, encoded exactly as the Python strategy's
--     -- encode() does (so the generic path and the native one read each other's keys):
--     decide = function(state, now, cost, spec)
--       return new_state, ttl_ms, allowed, limit, remaining, reset_ms, retry_ms, delay_ms
--     end,
--     refund = function(state, now, cost, spec) return new_state, ttl_ms end,
--   }
--
-- state is the stored string (false when the key holds nothing); new_state is nil
-- (unchanged: nothing to write), false (delete the key) or the new encoded string.
-- spec is the strategy's fixed numbers for this rate and request ("limit,period,..."),
-- resolved in Python (native.py). A strategy that keeps its state in a Redis structure
-- of its own sets ``structured = true`` and works on the key itself (see
-- sliding_window_log.lua).
--
-- Every time is a whole number of milliseconds: the Python strategies report seconds as
-- ms / 1000, so the scripts return the milliseconds and Python divides. retry_ms is
-- NEVER (-1) when waiting cannot help. Lua numbers are doubles: every intermediate
-- integer stays below 2^53 (the strategies refuse rates that would need more).

local STRATEGIES = {}
local NEVER = -1
local floor = math.floor
local max = math.max
local min = math.min
local match = string.match
local format = string.format

-- Integer division rounding down, exact for |a| < 2^53 (a correctly rounded quotient
-- cannot cross an integer when the dividend is below 2^53).
local function idiv(a, b)
  return floor(a / b)
end

-- Integer division rounding up (positive denominators), as ceil_div in Python.
local function ceil_div(a, b)
  return -floor(-a / b)
end

-- floor(a * b / c) and (a * b) mod c, exact for whole a, b >= 0 and 0 < c < 2^52 whenever
-- the quotient is below 2^53, even where a * b itself is not (10 million units times a
-- 30-day period is 2.6e16): b's bits are taken one at a time, the remainder kept below c.
local function muldiv(a, b, c)
  if a * b < 9007199254740992 then -- 2^53: the product is exact
    local quotient = floor(a * b / c)
    return quotient, a * b - quotient * c
  end
  local whole, part = floor(a / c), a % c -- a * b = whole * b * c + part * b
  local high, low = 0, 0 -- part * (b's bits so far) = high * c + low, low < c
  local bit = 1
  while bit * 2 <= b do
    bit = bit * 2
  end
  local rest = b
  while bit >= 1 do
    high, low = high * 2, low * 2
    if low >= c then
      high, low = high + 1, low - c
    end
    if rest >= bit then
      rest = rest - bit
      low = low + part
      if low >= c then
        high, low = high + 1, low - c
      end
    end
    bit = bit / 2
  end
  return whole * b + high, low
end

-- Decoders of "a,b[,c...]" states: the integers, or nil for a missing or unreadable
-- state (another version's format: decided as no state, as the generic path does).
local function decode2(state)
  if state then
    local a, b = match(state, "^(%-?%d+),(%-?%d+)$")
    if a then
      return tonumber(a), tonumber(b)
    end
  end
  return nil
end

local function decode3(state)
  if state then
    local a, b, c = match(state, "^(%-?%d+),(%-?%d+),(%-?%d+)$")
    if a then
      return tonumber(a), tonumber(b), tonumber(c)
    end
  end
  return nil
end

-- The time of this call and the TTL padding, from the call's op argument: "a", "p" or
-- "r" alone means the server's clock; "<op><now_ms>+<padding_ms>" an injected one.
local function read_clock(op)
  if #op == 1 then
    local time = redis.call("TIME")
    return time[1] * 1000 + floor(time[2] / 1000), 0
  end
  local now, padding = match(op, "^.(%-?%d+)%+(%d+)$")
  return tonumber(now), tonumber(padding)
end

-- Writes a decided state: a TTL is always at least 1 ms (PX 0 is an error, and a key
-- must never live for ever). false deletes the key.
local function store(key, new_state, ttl, padding)
  if new_state then
    redis.call("SET", key, new_state, "PX", max(ttl, 1) + padding)
  else
    redis.call("DEL", key)
  end
end

-- One decision as the reply carries it: "allowed,limit,remaining,reset_ms,retry_ms,delay_ms".
local function outcome(allowed, limit, remaining, reset, retry, delay)
  local flag = 0
  if allowed then
    flag = 1
  end
  return format("%d,%d,%d,%d,%d,%d", flag, limit, remaining, reset, retry, delay)
end
