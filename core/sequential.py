"""A sequential comparison of two sides' seeds: the verdict as soon as the seeds make it clear, at looks fixed in
advance, with the error rate spent across them by a stated rule.

The design (stated before any seed is trained, and printed in the plan):

- Looks at 5, 10, 15 and 20 seeds a side (information fractions t_k = n_k / 20).
- A two-sided error rate of 0.05 spent by Lan and DeMets' spending function of Pocock type,
  alpha(t) = 0.05 ln(1 + (e - 1) t): nearly equal shares at every look, so an edit that clearly helps or hurts is
  decided at 5 seeds. Look k's boundary c_k solves P(|Z_1| < c_1, ..., |Z_k-1| < c_k-1, |Z_k| >= c_k) =
  alpha(t_k) - alpha(t_k-1) for the z-statistics of one difference seen at t_1 < ... < t_K (their correlation
  sqrt(t_j / t_k)); a look decides when the exact permutation test on every seed so far has p below its nominal
  level 2 (1 - Phi(c_k)).
- Futility, non-binding (stopping for it only ever removes a rejection, so it never raises the error rate): at a
  look before the last, stop when the 90% interval of B - A lies within +-0.05 points, a difference of 5 test
  images: no difference that large is likely.

    design = SequentialDesign()
    design.nominal_levels()            # (0.0179, 0.0179, 0.0184, 0.0188)
    design.decide(a_scores, b_scores)  # Look(...): its p, its level, and whether it stops, and why
"""
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from core.stats import Difference, difference, welch_interval


@functools.cache
def pocock_boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """Each look's two-sided z boundary under the Lan-DeMets Pocock-type spending of `alpha` (see the module)."""
    spent = [alpha * math.log(1 + (math.e - 1) * t) for t in fractions]
    correlation = np.sqrt(np.minimum.outer(fractions, fractions) / np.maximum.outer(fractions, fractions))
    boundaries: list[float] = []
    for k, total in enumerate(spent):
        def crossed(c: float) -> float:
            box = np.array([*boundaries, c])
            if k == 0:
                inside = stats.norm.cdf(c) - stats.norm.cdf(-c)
            else:  # Genz's quasi-Monte Carlo integration, seeded so that a design has one set of boundaries
                inside = stats.multivariate_normal(cov=correlation[:k + 1, :k + 1]).cdf(
                    box, lower_limit=-box, rng=np.random.default_rng(0))
            return 1 - inside - total
        boundaries.append(optimize.brentq(crossed, 0.5, 8.0, xtol=1e-6))
    return tuple(boundaries)


@dataclass(frozen=True)
class Look:
    """One look's finding on the seeds so far."""
    number: int  # 1-based
    seeds: int  # a side
    difference: Difference
    level: float  # the nominal level its p must be below
    futile_interval: tuple[float, float]  # the 90% interval futility reads
    stop: str  # "decided", "futile", "last" (no difference at the last look) or "" (go on)

    @property
    def decided(self) -> bool:
        return self.stop == "decided"


@dataclass(frozen=True)
class SequentialDesign:
    looks: tuple[int, ...] = (5, 10, 15, 20)  # seeds a side at each look
    alpha: float = 0.05  # two-sided, over all the looks
    smallest_difference: float = 0.05  # points: the size worth finding, which futility asks about
    futility_confidence: float = 0.90

    def nominal_levels(self) -> tuple[float, ...]:
        fractions = tuple(n / self.looks[-1] for n in self.looks)
        return tuple(2 * (1 - stats.norm.cdf(c)) for c in pocock_boundaries(fractions, self.alpha))

    def describe(self) -> str:
        """The design in words, for the plan and the page."""
        levels = ", ".join(f"{n} ({level:.4f})" for n, level in zip(self.looks, self.nominal_levels()))
        return (f"sequential: looks at {', '.join(map(str, self.looks))} seeds a side; two-sided error rate "
                f"{self.alpha:g} spent by Lan-DeMets' Pocock-type function, so a look decides when the exact "
                f"permutation test's p is below its level (seeds: level) {levels}; it stops for futility before the "
                f"last look when the {self.futility_confidence:.0%} interval of B − A lies within "
                f"±{self.smallest_difference:g} points (non-binding)")

    def decide(self, a: list[float], b: list[float], resamples: int | None = None) -> Look:
        """The look at `len(a)` seeds a side (one of `looks`): decided, futile, the last, or go on. `resamples`
        samples the permutation test (simulations); None: exact where it can be."""
        number = self.looks.index(len(a)) + 1
        found = difference(a, b, resamples)
        level = self.nominal_levels()[number - 1]
        low, high = welch_interval(a, b, self.futility_confidence)
        if found.p < level:
            stop = "decided"
        elif number == len(self.looks):
            stop = "last"
        elif -self.smallest_difference < low and high < self.smallest_difference:
            stop = "futile"
        else:
            stop = ""
        return Look(number, len(a), found, level, (low, high), stop)

