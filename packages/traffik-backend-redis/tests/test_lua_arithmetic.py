"""The scripts' exact arithmetic where a double alone is not: ``muldiv`` against Python."""

from __future__ import annotations

import math
import random

import redis.asyncio as redis

from traffik.backends.redis.scripts import lua_source

BELOW_2_52 = 2**52 - 1
CALL_MULDIV = """
local quotient, rest = muldiv(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return {format("%d", quotient), format("%d", rest)}
"""


async def lua_muldiv(client: redis.Redis, a: int, b: int, c: int) -> tuple[int, int]:
    reply = await client.eval(lua_source("prelude.lua") + CALL_MULDIV, 0, a, b, c)
    quotient, rest = (int(part) for part in reply)
    return quotient, rest


def cases() -> list[tuple[int, int, int]]:
    """Random factors below 2**52 whose quotient is below 2**53, and products far past
    2**53 that are exact multiples of the divisor: where a rounded product would land on
    the wrong side of a whole quotient (or leave a remainder where there is none)."""
    rng = random.Random(53)
    found = [(10_000_000, 2_592_000_000 - 1296, 2_592_000_000)]  # ten million a month
    while len(found) < 400:
        a, b, c = (rng.randrange(1, BELOW_2_52) for _ in range(3))
        if a * b // c < 2**53:
            found.append((a, b, c))
        multiple = c // math.gcd(a, c)  # a * (k * multiple) is a multiple of c
        k = rng.randrange(1, max(2, BELOW_2_52 // multiple))
        if k * multiple < BELOW_2_52 and a * k * multiple // c < 2**53:
            found.append((a, k * multiple, c))
    return found


async def test_muldiv_is_exact_where_the_product_is_not(raw_redis: redis.Redis) -> None:
    for a, b, c in cases():
        assert await lua_muldiv(raw_redis, a, b, c) == divmod(a * b, c), (a, b, c)
