-- Traffik decision script, part 1 of 3: helpers shared by every strategy.
--
-- The script is composed from this prelude, one file per native strategy, and the
-- dispatcher. Each strategy file adds one entry to STRATEGIES:
--
--   STRATEGIES.<name> = {
--     decide = function(state, now, limit, period, cost, args)
--       return new_state, allowed, limit, remaining, reset_after, retry_after, delay, ttl_ms
--     end,
--     refund = function(state, now, limit, period, cost, args)
--       return new_state, ttl_ms
--     end,
--   }
--
-- state is the stored string (false when the key holds nothing), encoded exactly as the
-- Python strategy's encode() does, so both paths read each other's keys. new_state is
-- UNCHANGED (skip the write), DELETE (drop the key) or the new encoded string. Seconds
-- (reset_after, retry_after, delay) are computed with the same expressions as in Python;
-- the dispatcher sends them back as "%.17g" strings, which Python parses to the same
-- doubles. Lua numbers are doubles: keep every intermediate integer below 2^53.

local STRATEGIES = {}
local UNCHANGED = {}
local DELETE = false
local INF = math.huge

-- Integer division rounding down, exact for |a| < 2^53 (a correctly rounded quotient
-- cannot cross an integer when the dividend is below 2^53).
local function idiv(a, b)
  return math.floor(a / b)
end

-- Integer division rounding up (positive denominators), as ceil_div in Python.
local function ceil_div(a, b)
  return -math.floor(-a / b)
end

-- "a,b" -> a, b (numbers); nil when the state is missing or not two integers.
local function decode_pair(state)
  if not state then
    return nil
  end
  local a, b = string.match(state, "^(%-?%d+),(%-?%d+)$")
  if not a then
    return nil
  end
  return tonumber(a), tonumber(b)
end

-- a, b -> "a,b", integers written in full (tostring would switch to exponents).
local function encode_pair(a, b)
  return string.format("%.0f,%.0f", a, b)
end
