"""The statistics of an equal-step comparison, on ``scipy.stats``: Welch's t-test, a seeded bootstrap interval of
the difference of means, the minimum detectable effect, the paired analysis of arms that share seeds, and
per-achievement differences beside the baseline's seed-to-seed spread."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# numpy and scipy are imported where they are used: the operator imports this module, and keeps its memory small
# until an experiment's status is computed.

ALPHA = 0.05  # two-sided significance level
POWER = 0.80  # the power at which the minimum detectable effect is stated
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test of mean(a) - mean(b)."""

    t: float
    df: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test of mean(a) - mean(b), two-sided; two identical constant samples give p = 1, two different
    constant samples p = 0 (a difference without noise)."""
    from scipy import stats

    diff = statistics.fmean(a) - statistics.fmean(b)
    if statistics.variance(a) / len(a) + statistics.variance(b) / len(b) == 0:
        return Welch(math.inf if diff else 0.0, float(len(a) + len(b) - 2), 0.0 if diff else 1.0)
    res = stats.ttest_ind(a, b, equal_var=False)
    return Welch(float(res.statistic), float(res.df), float(res.pvalue))


def bootstrap_ci(
    a: Sequence[float], b: Sequence[float], n: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(a) - mean(b), seeds resampled within each arm; reproducible for a
    given ``seed``."""
    import numpy as np
    from scipy import stats

    def diff(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    res = stats.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        diff,
        n_resamples=n,
        vectorized=True,
        paired=False,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def power(effect: float, sd: float, n_a: int, n_b: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided two-sample t-test (pooled variance) to detect a true difference ``effect`` between
    arms of ``n_a`` and ``n_b`` seeds whose scores vary with standard deviation ``sd`` (noncentral t)."""
    from scipy import stats

    df = n_a + n_b - 2
    nc = effect / (sd * math.sqrt(1 / n_a + 1 / n_b))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def mde(sd: float, n_a: int, n_b: int, alpha: float = ALPHA, target: float = POWER) -> float:
    """The minimum detectable effect: the smallest true difference the two-sided t-test at ``alpha`` finds with
    probability ``target`` for these seeds and this seed-to-seed standard deviation; inf with fewer than 2 seeds
    in an arm, 0 without noise."""
    from scipy import optimize

    if n_a < 2 or n_b < 2:
        return math.inf
    if sd == 0:
        return 0.0
    hi = sd
    while power(hi, sd, n_a, n_b, alpha) < target:
        hi *= 2
    return float(optimize.brentq(lambda d: power(d, sd, n_a, n_b, alpha) - target, 0.0, hi, xtol=1e-10))


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The pooled standard deviation of two samples (the t-test's common sd)."""
    df = len(a) + len(b) - 2
    return math.sqrt(((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)) / df)


@dataclass(frozen=True)
class Paired:
    """The paired analysis of two arms over the seeds they share (same initial weights and worlds)."""

    seeds: tuple[int, ...]
    diff: float  # mean of the per-seed differences
    sd_diff: float  # sd of the per-seed differences
    sd_unpaired: float  # sqrt(var(a) + var(b)): the sd of a difference of independent seeds
    t: float
    p: float
    correlation: float  # Pearson correlation of the two arms' scores over the shared seeds

    @property
    def helps(self) -> bool:
        """Whether pairing by seed reduces the variance of the difference."""
        return self.sd_diff < self.sd_unpaired


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> Paired | None:
    """Paired t-test on the per-seed differences a[s] - b[s] over the seeds both arms have; None below 3 shared
    seeds (too few to estimate the variance of the differences and its correlation)."""
    import numpy as np
    from scipy import stats

    shared = tuple(sorted(set(a) & set(b)))
    if len(shared) < 3:
        return None
    xa, xb = [a[s] for s in shared], [b[s] for s in shared]
    d = [x - y for x, y in zip(xa, xb, strict=True)]
    sd_d = statistics.stdev(d)
    sd_u = math.sqrt(statistics.variance(xa) + statistics.variance(xb))
    mean = statistics.fmean(d)
    if sd_d == 0:
        t, p = (math.inf if mean else 0.0), (0.0 if mean else 1.0)
    else:
        res = stats.ttest_rel(xa, xb)
        t, p = float(res.statistic), float(res.pvalue)
    corr = float(np.corrcoef(xa, xb)[0, 1]) if statistics.stdev(xa) and statistics.stdev(xb) else 0.0
    return Paired(shared, mean, sd_d, sd_u, t, p, corr)


@dataclass(frozen=True)
class AchievementDiff:
    """One achievement's success (percent) in an arm beside the baseline's seed-to-seed spread."""

    name: str
    arm_mean: float
    base_mean: float
    base_min: float
    base_max: float
    base_sd: float
    seeds_below: int  # the arm's seeds below the baseline's lowest seed
    seeds: int

    @property
    def diff(self) -> float:
        return self.arm_mean - self.base_mean

    @property
    def lost(self) -> bool:
        """The arm's mean fell below every baseline seed: a loss beyond the baseline's seed-to-seed range."""
        return self.arm_mean < self.base_min

    @property
    def gained(self) -> bool:
        """The arm's mean rose above every baseline seed."""
        return self.arm_mean > self.base_max


def achievement_diffs(
    arm: Sequence[Mapping[str, float]], base: Sequence[Mapping[str, float]], names: Sequence[str]
) -> list[AchievementDiff]:
    """Per achievement: the arm's mean success over its seeds, the baseline's mean, min, max and sd over its seeds
    (a missing achievement counts as 0 %). Both arms need at least one seed."""
    out = []
    for k in names:
        xa = [float(s.get(k, 0.0)) for s in arm]
        xb = [float(s.get(k, 0.0)) for s in base]
        out.append(
            AchievementDiff(
                name=k,
                arm_mean=statistics.fmean(xa),
                base_mean=statistics.fmean(xb),
                base_min=min(xb),
                base_max=max(xb),
                base_sd=statistics.stdev(xb) if len(xb) > 1 else 0.0,
                seeds_below=sum(1 for x in xa if x < min(xb)),
                seeds=len(xa),
            )
        )
    return out


@dataclass(frozen=True)
class Comparison:
    """An arm against the baseline: difference of means, Welch's test, bootstrap interval and the minimum
    detectable effect for the seeds finished (from the pooled sd of the two arms)."""

    diff: float
    welch: Welch
    ci: tuple[float, float]
    mde: float
    sd: float
    n: int
    n_base: int

    @property
    def significant(self) -> bool:
        """A significant gain: p < 5 % and the bootstrap interval above zero."""
        return self.welch.p < ALPHA and self.ci[0] > 0


def compare(scores: Sequence[float], base: Sequence[float]) -> Comparison | None:
    """The comparison of an arm's per-seed scores with the baseline's; None below 2 seeds in either."""
    if len(scores) < 2 or len(base) < 2:
        return None
    sd = pooled_sd(scores, base)
    return Comparison(
        diff=statistics.fmean(scores) - statistics.fmean(base),
        welch=welch(scores, base),
        ci=bootstrap_ci(scores, base),
        mde=mde(sd, len(scores), len(base)),
        sd=sd,
        n=len(scores),
        n_base=len(base),
    )
