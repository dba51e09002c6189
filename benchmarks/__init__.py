"""Traffik's benchmark suite: ``python -m benchmarks`` (``hatch run bench``).

See ``benchmarks/README.md`` for what each section measures and how.
"""
