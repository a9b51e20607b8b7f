"""How fast this machine runs plain Python right now, printed beside every benchmark's table.

The virtual machines these benchmarks run on change speed from hour to hour (the same code
measured a third slower or faster on another run), so a figure is only comparable with another
taken at a similar reference time.
"""

from __future__ import annotations

import time


def reference_loop_s(rounds: int = 3) -> float:
    """CPU seconds for ten million additions in a Python loop: the best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return best


def describe() -> str:
    return f"reference loop: {reference_loop_s():.2f} CPU s for 10^7 Python additions"
