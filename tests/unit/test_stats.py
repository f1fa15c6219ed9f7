"""Wilson intervals, exact McNemar and the paired bootstrap against figures worked out by hand."""

from __future__ import annotations

import math

import pytest

from anesbench.stats import mcnemar_exact, paired_bootstrap, wilson


def test_wilson_eight_of_ten() -> None:
    # By hand, z = 1.96: centre = (0.8 + 1.9208/10) / 1.38416 = 0.71681,
    # half = 1.96 * sqrt(0.016 + 0.0096040) / 1.38416 = 0.22658  ->  [0.4902, 0.9434]
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


@pytest.mark.parametrize("n", range(1, 13))
def test_wilson_holds_the_accuracy_at_both_ends(n: int) -> None:
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_wilson_zero_successes_is_not_a_zero_width_interval() -> None:
    # p = 0: upper = z^2/n / (1 + z^2/n) = 0.38415 / 1.38415 = 0.27753
    assert wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))


def test_wilson_sixty_six_questions_is_about_plus_minus_eleven_points() -> None:
    # 43/66 = 0.65152; z^2/n = 0.058204; centre = (0.65152 + 0.029102) / 1.058204 = 0.64319;
    # half = 1.96 * sqrt(0.0034400 + 0.00022047) / 1.058204 = 0.11206
    low, high = wilson(43, 66)
    assert (round(low, 3), round(high, 3)) == (0.531, 0.755)


def test_wilson_without_data_says_nothing_is_known() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


def test_mcnemar_one_against_six() -> None:
    # 7 discordant pairs: P(X <= 1) = (C(7,0) + C(7,1)) / 2^7 = 8/128; two-sided 16/128
    assert mcnemar_exact(1, 6) == 0.125
    assert mcnemar_exact(6, 1) == 0.125


def test_mcnemar_two_against_eight() -> None:
    # (1 + 10 + 45) / 1024 = 0.0546875, doubled
    assert mcnemar_exact(2, 8) == 0.109375


def test_mcnemar_balanced_and_empty_are_one() -> None:
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_stays_exact_for_thousands_of_pairs() -> None:
    p = mcnemar_exact(1000, 1200)
    assert 0 < p < 1e-4 and math.isfinite(p)


def test_paired_bootstrap_is_seeded_and_brackets_the_difference() -> None:
    first = paired_bootstrap(17, 10, 66)
    assert first == paired_bootstrap(17, 10, 66)
    low, high = first
    assert low < (17 - 10) / 66 < high
    assert paired_bootstrap(0, 0, 66) == (0.0, 0.0)
