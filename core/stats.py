"""Statistics for results stated over seeds: how often a target is met, and whether two samples differ.

Plain Python (no torch, no numpy): the results tables use it.
"""
import itertools
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


EXACT_LIMIT = 200_000  # relabellings a permutation test enumerates exactly; past it, it samples RESAMPLES of them
RESAMPLES = 20_000
Z_80 = 0.8416212335729143  # the standard normal's 80% quantile: a test with 80% power


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0 or x >= 1:
        return max(0.0, min(1.0, x))
    if x > (a + 1) / (a + b + 2):
        return 1 - _incomplete_beta(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1 - c * d) < 1e-12:
            break
    return front * (f - 1)


def t_quantile(p: float, df: float) -> float:
    """Student's t distribution's p-quantile (0.5 < p < 1) for `df` degrees of freedom, by bisection on its CDF."""
    def cdf(t: float) -> float:
        return 1 - 0.5 * _incomplete_beta(df / (df + t * t), df / 2, 0.5)

    low, high = 0.0, 1e3
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class Difference:
    """B's mean minus A's, with Welch's 95% interval and a two-sample permutation test's p."""
    mean: float
    low: float
    high: float
    p: float
    arrangements: int  # the relabellings the test counted
    exact: bool  # all of them, or a random sample of RESAMPLES

    @property
    def test(self) -> str:
        how = (f"exact over all {self.arrangements:,} relabellings" if self.exact
               else f"{self.arrangements:,} random relabellings")
        return f"two-sample permutation test of the difference of means, {how}"


def permutation_test(a: list[float], b: list[float]) -> tuple[float, int, bool]:
    """Two-sided p of the difference of means under relabelling: exact where the relabellings number at most
    EXACT_LIMIT, else sampled. Returns (p, relabellings counted, exact)."""
    arrangements = math.comb(len(a) + len(b), len(a))
    if arrangements > EXACT_LIMIT:
        return permutation_p_value(a, b, RESAMPLES), RESAMPLES, False
    pooled, total, n = a + b, sum(a) + sum(b), len(a)
    observed = abs(sum(a) / n - (total - sum(a)) / len(b))
    as_large = sum(abs(s / n - (total - s) / len(b)) >= observed - 1e-9
                   for s in map(sum, itertools.combinations(pooled, n)))
    return as_large / arrangements, arrangements, True


def difference(a: list[float], b: list[float]) -> Difference:
    """B - A: the difference of the means, Welch's 95% interval for it, and the permutation test's p."""
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(var_a + var_b)
    mean = statistics.mean(b) - statistics.mean(a)
    if se == 0:
        half = 0.0
    else:
        df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
        half = t_quantile(0.975, df) * se
    p, arrangements, exact = permutation_test(a, b)
    return Difference(mean, mean - half, mean + half, p, arrangements, exact)


def seeds_to_resolve(a: list[float], b: list[float], delta: float) -> int:
    """Seeds each side would need for a two-sided test at 5% to find a difference of `delta` with 80% power, at the
    spread observed (the pooled standard deviation)."""
    pooled = ((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)) / (len(a) + len(b) - 2)
    return max(2, math.ceil(2 * (Z_95 + Z_80) ** 2 * pooled / delta ** 2))
