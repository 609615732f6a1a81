"""The experiment statistics against values computed independently: by hand, closed forms, textbook examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envgen.experiment import stats

# Wikipedia, "Welch's t-test", example 1: t = -2.46, nu = 25.0, p = 0.021.
WIKI_A = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
WIKI_B = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_textbook_example() -> None:
    res = stats.welch(WIKI_A, WIKI_B)
    assert res.t == pytest.approx(-2.46, abs=0.005)
    assert res.df == pytest.approx(25.0, abs=0.05)
    assert res.p == pytest.approx(0.021, abs=0.0005)


def test_welch_by_hand() -> None:
    # a: mean 2, var 1; b: mean 5.5, var 5/3. se^2 = 1/3 + 5/12 = 3/4; t = -3.5 / sqrt(3/4);
    # df = (3/4)^2 / ((1/3)^2 / 2 + (5/12)^2 / 3) = 0.5625 / (1/18 + 25/432) = 243/49.
    res = stats.welch([1, 2, 3], [4, 5, 6, 7])
    assert res.t == pytest.approx(-3.5 / math.sqrt(0.75))
    assert res.df == pytest.approx(243 / 49)
    assert 0.005 < res.p < 0.02  # t(4.96) two-sided at |t| = 4.04: between the 0.01 and 0.02 table values' span


def test_welch_without_noise() -> None:
    assert stats.welch([2, 2], [2, 2]).p == 1.0
    assert stats.welch([3, 3], [2, 2]).p == 0.0


def test_paired_closed_form_df2() -> None:
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3); for 2 df the t CDF is 1/2 + t / (2 sqrt(2 + t^2)),
    # so the two-sided p is 1 - t / sqrt(2 + t^2).
    res = stats.paired({0: 3.0, 1: 5.0, 2: 7.0, 9: 1.0}, {0: 2.0, 1: 3.0, 2: 4.0})
    assert res is not None
    t = 2 * math.sqrt(3)
    assert res.seeds == (0, 1, 2)
    assert (res.diff, res.sd_diff) == (pytest.approx(2.0), pytest.approx(1.0))
    assert res.t == pytest.approx(t)
    assert res.p == pytest.approx(1 - t / math.sqrt(2 + t * t))
    # var(a) = 4, var(b) = 1: unpaired sd sqrt(5) > 1, and the scores move together
    assert res.sd_unpaired == pytest.approx(math.sqrt(5))
    assert res.correlation == pytest.approx(1.0)
    assert res.helps


def test_pairing_does_not_help_when_seeds_disagree() -> None:
    # b goes down where a goes up: differences -4, 0, 4 vary more than independent seeds would (4 > sqrt 10)
    res = stats.paired({0: 1.0, 1: 2.0, 2: 3.0}, {0: 5.0, 1: 2.0, 2: -1.0})
    assert res is not None
    assert res.sd_diff == pytest.approx(4.0)
    assert res.sd_unpaired == pytest.approx(math.sqrt(1 + 9))
    assert res.correlation == pytest.approx(-1.0)
    assert res.p == pytest.approx(1.0)
    assert not res.helps
    assert stats.paired({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}) is None


def test_power_and_mde_match_gpower() -> None:
    # G*Power / Cohen: d = 0.5, two-sided alpha 0.05, 64 per group -> power 0.8014596; d = 0.8 needs 26 (0.8075)
    assert stats.power(0.5, 1.0, 64, 64) == pytest.approx(0.8014596, abs=1e-6)
    assert stats.power(0.8, 1.0, 26, 26) == pytest.approx(0.8074866, abs=1e-4)
    assert stats.mde(1.0, 64, 64) == pytest.approx(0.4991, abs=2e-4)  # just under 0.5: power 0.80 exactly
    assert stats.power(stats.mde(2.0, 6, 6), 2.0, 6, 6) == pytest.approx(0.80, abs=1e-8)
    assert stats.mde(1.0, 6, 6) > stats.mde(1.0, 12, 12)  # more seeds detect smaller effects
    assert stats.mde(1.0, 1, 6) == math.inf
    assert stats.mde(0.0, 3, 3) == 0.0


def test_pooled_sd_by_hand() -> None:
    # ((3-1) * 1 + (4-1) * 5/3) / 5 = 7/5
    assert stats.pooled_sd([1, 2, 3], [4, 5, 6, 7]) == pytest.approx(math.sqrt(7 / 5))


def test_bootstrap_ci_is_the_percentile_interval_of_resampled_means() -> None:
    a, b = [6.1, 7.3, 5.2, 6.8], [5.9, 6.0, 4.8]
    lo, hi = stats.bootstrap_ci(a, b, n=4000, seed=7)
    assert (lo, hi) == stats.bootstrap_ci(a, b, n=4000, seed=7)  # seeded: reproducible
    assert (lo, hi) != stats.bootstrap_ci(a, b, n=4000, seed=8)
    # the same interval computed directly: resample each arm with replacement, 2.5th and 97.5th percentiles
    rng = np.random.default_rng(7)
    xa = np.asarray(a)[rng.integers(0, len(a), (4000, len(a)))].mean(axis=1)
    xb = np.asarray(b)[rng.integers(0, len(b), (4000, len(b)))].mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(xa - xb, [2.5, 97.5])), abs=1e-9)
    # bounds: every resampled difference lies between min(a) - max(b) and max(a) - min(b)
    assert min(a) - max(b) <= lo < hi <= max(a) - min(b)


def test_bootstrap_of_constant_arms_is_the_difference() -> None:
    assert stats.bootstrap_ci([3.0, 3.0], [1.0, 1.0, 1.0]) == pytest.approx((2.0, 2.0))


def test_compare() -> None:
    c = stats.compare([1, 2, 3], [4, 5, 6, 7])
    assert c is not None
    assert c.diff == pytest.approx(-3.5)
    assert c.sd == pytest.approx(math.sqrt(7 / 5))
    assert c.mde == pytest.approx(stats.mde(math.sqrt(7 / 5), 3, 4))
    assert not c.significant  # significant, but a loss, not a gain
    assert stats.compare([1.0], [1.0, 2.0]) is None


def test_achievement_diffs_and_losses() -> None:
    base = [{"wake_up": 83.0, "eat_cow": 50.0}, {"wake_up": 91.0, "eat_cow": 70.0}, {"wake_up": 87.0}]
    arm = [{"wake_up": 16.1, "eat_cow": 60.0}, {"wake_up": 90.0, "eat_cow": 95.0}]
    wake, cow = stats.achievement_diffs(arm, base, ["wake_up", "eat_cow"])
    assert (wake.base_min, wake.base_max, wake.base_mean) == (83.0, 91.0, pytest.approx(87.0))
    assert wake.base_sd == pytest.approx(4.0)
    assert wake.arm_mean == pytest.approx(53.05)
    assert wake.lost and not wake.gained and wake.seeds_below == 1
    # eat_cow: the third baseline seed lacks it (0 %): range 0-70, mean 40
    assert (cow.base_min, cow.base_max, cow.base_mean) == (0.0, 70.0, pytest.approx(40.0))
    assert cow.diff == pytest.approx(37.5)
    assert cow.gained and not cow.lost and cow.seeds_below == 0
