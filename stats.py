"""Statistics for results stated over seeds: how often a target is met, and whether two samples differ.

Plain Python (no torch, no numpy): the results tables use it.
"""
import math
import random
import statistics
from dataclasses import dataclass
from typing import Callable

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95%
# How one recipe's seeds become one score (--tune --score): each takes the seeds' accuracies.
SCORES: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.mean,
    "worst": min,
    "mean-sd": lambda values: statistics.mean(values) - (statistics.stdev(values) if len(values) > 1 else 0.0),
}
SCORE_TEXT = {"mean": "mean over seeds", "worst": "worst seed", "mean-sd": "mean minus one sd over seeds"}


@dataclass(frozen=True)
class Rate:
    """k successes in n trials, with the Wilson score interval on the rate."""
    k: int
    n: int
    low: float
    high: float

    def __str__(self) -> str:
        """'19/20 (95%, 76-99%)': the count, the rate and its 95% interval."""
        return f"{self.k}/{self.n} ({100 * self.k / self.n:.0f}%, {100 * self.low:.0f}–{100 * self.high:.0f}%)"


def wilson_interval(k: int, n: int, z: float = Z_95) -> Rate:
    """The Wilson score interval: unlike k/n ± z·se it stays inside [0, 1] and is not empty at 0 or n of n."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"a rate needs 0 <= k <= n and n > 0, got {k} of {n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 and n of n one end is exactly 0 or 1; computed, it can round a hair inside.
    return Rate(k, n, 0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half)


def permutation_p_value(a: list[float], b: list[float], resamples: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of the difference of means of `a` and `b` under random relabelling (no normality
    assumed): the share of relabellings whose difference is at least as large as the one observed."""
    observed = abs(statistics.mean(a) - statistics.mean(b))
    pooled, draw = a + b, random.Random(seed)
    as_large = 0
    for _ in range(resamples):
        draw.shuffle(pooled)
        as_large += abs(statistics.mean(pooled[:len(a)]) - statistics.mean(pooled[len(a):])) >= observed - 1e-12
    return (as_large + 1) / (resamples + 1)
