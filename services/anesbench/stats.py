"""The statistics behind the numbers we publish: Wilson intervals, exact McNemar, paired bootstrap.

Pure functions on counts, no I/O; the leaderboard, ``compare`` and the report call them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20250402  # fixed: the same runs give the same interval every time


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of ``successes / n``; ``(0, 1)`` when ``n`` is 0 (nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = Z95 * Z95
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # The interval always holds p: rounding alone put 0/3 above 0 and 10/10 below 1 (a negative error bar).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2.

    ``only_a`` pairs A got right and B wrong, ``only_b`` the reverse. Computed with exact integers,
    so it stays right for thousands of discordant pairs.
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    # C(n, i + 1) = C(n, i) * (n - i) / (i + 1), exactly: one big-integer step per term, not one comb each
    term = total = 1
    for i in range(min(only_a, only_b)):
        term = term * (n - i) // (i + 1)
        total += term
    tail = Fraction(total, 2**n)
    return float(min(Fraction(1), 2 * tail))


def paired_bootstrap(only_a: int, only_b: int, n: int) -> tuple[float, float]:
    """95 % percentile interval of accuracy(A) - accuracy(B) when the ``n`` pairs are resampled.

    A pair's contribution to the difference depends only on whether it is discordant (+1/n when only
    A is right, -1/n when only B is), so resampling pairs is drawing these three counts from a
    multinomial: the same distribution as resampling item indices, in O(resamples) memory.
    """
    if n <= 0:
        return 0.0, 0.0
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    p_a, p_b = only_a / n, only_b / n
    draws = rng.multinomial(n, [p_a, p_b, max(0.0, 1.0 - p_a - p_b)], size=BOOTSTRAP_RESAMPLES)
    differences = (draws[:, 0] - draws[:, 1]) / n
    low, high = np.quantile(differences, [0.025, 0.975])
    return float(low), float(high)
