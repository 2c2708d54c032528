"""Statistics for results stated over seeds: how often a target is met, and whether two samples differ.

The distributions and tests are SciPy's (Wilson's interval, Student's t, the permutation test), imported when first
used, so that records and the results tables read without numpy or SciPy loaded until a number is asked for.
"""
import math
import statistics
from dataclasses import dataclass
from typing import Callable

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


def wilson_interval(k: int, n: int) -> Rate:
    """The Wilson score interval (95%): unlike k/n ± z·se it stays inside [0, 1] and is not empty at 0 or n of n."""
    from scipy.stats import binomtest

    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"a rate needs 0 <= k <= n and n > 0, got {k} of {n}")
    interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return Rate(k, n, float(interval.low), float(interval.high))


EXACT_LIMIT = 200_000  # relabellings a permutation test enumerates exactly; past it, it samples RESAMPLES of them
RESAMPLES = 20_000
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95%
Z_80 = 0.8416212335729143  # the standard normal's 80% quantile: a test with 80% power


def t_quantile(p: float, df: float) -> float:
    """Student's t distribution's p-quantile for `df` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(p, df))


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


def permutation_test(a: list[float], b: list[float], resamples: int | None = None) -> tuple[float, int, bool]:
    """Two-sided p of the difference of means under relabelling (SciPy's permutation test): exact where the
    relabellings number at most EXACT_LIMIT, else (or when `resamples` is given) a seeded sample of them. Returns
    (p, relabellings counted, exact)."""
    import numpy as np
    from scipy.stats import permutation_test as scipy_permutation_test

    arrangements = math.comb(len(a) + len(b), len(a))
    exact = resamples is None and arrangements <= EXACT_LIMIT
    counted = arrangements if exact else resamples or RESAMPLES
    # In millionths of a point, as integers: relabellings that tie with the observed difference tie exactly (accuracies
    # step by hundredths, which floating point sums in different orders would split).
    x, y = (np.round(np.asarray(values) * 1e6).astype(np.int64) for values in (a, b))

    def scaled_mean_difference(first, second, axis: int):  # len(a) len(b) times the difference of the means
        return first.sum(axis=axis) * len(b) - second.sum(axis=axis) * len(a)

    result = scipy_permutation_test((x, y), scaled_mean_difference, vectorized=True, permutation_type="independent",
                                    alternative="two-sided", n_resamples=np.inf if exact else counted,
                                    rng=np.random.default_rng(0))
    return float(result.pvalue), counted, exact


def welch_interval(a: list[float], b: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Welch's interval for mean(b) - mean(a) at `confidence`."""
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(var_a + var_b)
    mean = statistics.mean(b) - statistics.mean(a)
    if se == 0:
        return mean, mean
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return mean - half, mean + half


def difference(a: list[float], b: list[float], resamples: int | None = None) -> Difference:
    """B - A: the difference of the means, Welch's 95% interval for it, and the permutation test's p (sampled with
    `resamples` relabellings where given)."""
    low, high = welch_interval(a, b)
    p, arrangements, exact = permutation_test(a, b, resamples)
    return Difference(statistics.mean(b) - statistics.mean(a), low, high, p, arrangements, exact)


def seeds_to_resolve(a: list[float], b: list[float], delta: float) -> int:
    """Seeds each side would need for a two-sided test at 5% to find a difference of `delta` with 80% power, at the
    spread observed (the pooled standard deviation)."""
    pooled = ((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)) / (len(a) + len(b) - 2)
    return max(2, math.ceil(2 * (Z_95 + Z_80) ** 2 * pooled / delta ** 2))
