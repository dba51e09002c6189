-- The generic path, step 2: write new states only if no key changed since it was read.
--
-- ARGV: per key, a presence flag ("1" stored, "0" missing) and the state that was read;
--       then per write: key index, "S" (set) or "D" (delete), value, TTL in ms.
-- Returns 1 when written, 0 when some key changed meanwhile (the caller decides again).
for index = 1, #KEYS do
  local current = redis.call("GET", KEYS[index])
  local present = ARGV[index * 2 - 1] == "1"
  if present then
    if current ~= ARGV[index * 2] then
      return 0
    end
  elseif current then
    return 0
  end
end
local position = #KEYS * 2 + 1
while position <= #ARGV do
  local key = KEYS[tonumber(ARGV[position])]
  if ARGV[position + 1] == "S" then
    redis.call("SET", key, ARGV[position + 2], "PX", ARGV[position + 3])
  else
    redis.call("DEL", key)
  end
  position = position + 4
end
return 1
