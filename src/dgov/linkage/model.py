"""The Fellegi–Sunter model: u-probabilities from random pairs, m-probabilities and λ by EM.

For a record pair with comparison vector γ, Fellegi and Sunter's match weight is
``log2(λ/(1-λ)) + Σ_c log2(m_c[γ_c] / u_c[γ_c])`` where ``m_c[k] = P(γ_c = k | match)``,
``u_c[k] = P(γ_c = k | non-match)`` and λ is the probability that two records drawn at random from
the whole comparison space (all left × right pairs, or all pairs of one table) match. A comparison
with no value on either side (γ = -1) adds nothing.

Training is unsupervised:

* **u** from pairs drawn at random from the comparison space (nearly all non-matches); the top
  "exact" level of a single-column comparison is instead counted exactly from value frequencies
  (Σ_v n_left(v)·n_right(v)), so rare agreements such as equal phones get a precise u rather than
  a handful of sampled hits. Pairs already linked deterministically (equal valid identifiers) are
  taken out of both estimates, so the true matches among "random" pairs do not inflate u.
* **m and λ by EM** over the candidate pairs that blocking produced, summarized as distinct γ
  patterns with counts (a few thousand rows however many pairs there are). Pairs outside the
  candidate set are treated as non-matches — the usual blocking assumption — so λ is the expected
  number of matches divided by the size of the whole comparison space. u stays fixed (from the
  random pairs), which keeps EM from explaining the blocked non-matches as matches; deterministic
  pairs enter with posterior 1 and seed m, pairs with two different valid identifiers (a check
  character catches every single typo and transposition, so one record's errors cannot turn one
  valid number into another) with posterior 0.

Everything is numpy over the pattern table; it takes milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Smallest m or u we allow, so that a level never seen in training does not get an infinite weight.
PROBABILITY_FLOOR = 1e-9
# A comparison's weight per level is clipped to ±this many bits (a single field cannot decide alone).
WEIGHT_LIMIT = 24.0
# Pseudo-count added to every level's expected match count in the M-step.
M_PSEUDO_COUNT = 1.0


@dataclass
class Parameters:
    """Trained model: λ and, per comparison, m and u indexed by level γ (0 … top)."""

    names: list[str]
    m: list[np.ndarray]
    u: list[np.ndarray]
    lam: float
    iterations: int = 0
    converged: bool = False

    @property
    def prior_weight(self) -> float:
        """log2 of the prior odds λ/(1-λ)."""
        return math.log2(self.lam / (1.0 - self.lam))

    def weights(self, index: int) -> np.ndarray:
        """Match weight log2(m/u) of every level of comparison ``index`` (clipped)."""
        return np.clip(np.log2(self.m[index] / self.u[index]), -WEIGHT_LIMIT, WEIGHT_LIMIT)

    def as_dict(self, labels: list[list[str]]) -> dict:
        """A JSON-friendly summary: λ, prior and per-comparison levels with m, u and weight."""
        comparisons = {}
        for index, name in enumerate(self.names):
            weights = self.weights(index)
            comparisons[name] = [
                {
                    "level": labels[index][level],
                    "gamma": level,
                    "m": float(self.m[index][level]),
                    "u": float(self.u[index][level]),
                    "weight": float(weights[level]),
                }
                for level in range(len(self.m[index]))
            ]
        return {
            "lambda": float(self.lam),
            "prior_weight": self.prior_weight,
            "iterations": self.iterations,
            "converged": self.converged,
            "comparisons": comparisons,
        }


def _normalized(values: np.ndarray) -> np.ndarray:
    """``values`` floored and scaled to sum to one."""
    values = np.maximum(values.astype(float), PROBABILITY_FLOOR)
    return values / values.sum()


def default_m(levels: int) -> np.ndarray:
    """Starting m for a comparison with ``levels`` levels above "different": most mass on exact."""
    m = np.full(levels + 1, 0.15 / max(levels - 1, 1))
    m[0] = 0.05
    m[levels] = 0.8 if levels > 1 else 0.95
    return _normalized(m)


def m_from_known_matches(patterns: np.ndarray, counts: np.ndarray, index: int, levels: int) -> np.ndarray | None:
    """m of comparison ``index`` estimated from patterns of known (deterministic) matches, or None if too few."""
    column = patterns[:, index]
    present = column >= 0
    total = counts[present].sum()
    if total < 50:
        return None
    observed = np.bincount(column[present].astype(np.int64), weights=counts[present], minlength=levels + 1)
    return _normalized(observed + 0.5)


def expectation_maximization(
    patterns: np.ndarray,
    counts: np.ndarray,
    known: np.ndarray,
    u: list[np.ndarray],
    total_pairs: float,
    *,
    names: list[str],
    known_non_matches: np.ndarray | None = None,
    max_iterations: int = 60,
    tolerance: float = 1e-6,
) -> Parameters:
    """Estimate m and λ with u fixed; ``known`` marks patterns of deterministic matches (posterior 1).

    ``known_non_matches`` marks patterns that cannot be matches (different valid identifiers);
    they get posterior 0, so relatives and twins, who agree on much else, do not leak into m.

    ``patterns`` is (P × C) int8 of γ values (-1 = no value), ``counts`` the number of candidate pairs
    per pattern, ``total_pairs`` the size of the whole comparison space.
    """
    n_comparisons = patterns.shape[1]
    levels = [len(u[c]) - 1 for c in range(n_comparisons)]
    counts = counts.astype(float)
    known_counts = np.where(known, counts, 0.0)
    m = []
    for c in range(n_comparisons):
        seeded = m_from_known_matches(patterns[known], counts[known], c, levels[c]) if known.any() else None
        m.append(seeded if seeded is not None else default_m(levels[c]))
    expected = max(known_counts.sum(), 0.05 * counts.sum(), 1.0)
    lam = min(expected / total_pairs, 0.5)
    log_u = np.zeros(len(patterns))
    for c in range(n_comparisons):
        column = patterns[:, c]
        present = column >= 0
        log_u[present] += np.log(u[c][column[present]])
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - reported after the loop
        log_m = np.zeros(len(patterns))
        for c in range(n_comparisons):
            column = patterns[:, c]
            present = column >= 0
            log_m[present] += np.log(m[c][column[present]])
        logit = math.log(lam) - math.log1p(-lam) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        posterior = np.where(known, 1.0, posterior)
        if known_non_matches is not None:
            posterior = np.where(known_non_matches & ~known, 0.0, posterior)
        weighted = counts * posterior
        new_lam = min(max(weighted.sum() / total_pairs, PROBABILITY_FLOOR), 0.5)
        new_m = []
        for c in range(n_comparisons):
            column = patterns[:, c]
            present = column >= 0
            sums = np.bincount(column[present].astype(np.int64), weights=weighted[present], minlength=levels[c] + 1)
            # One pseudo-count per level: a level no match showed in training still gets a finite,
            # moderate weight instead of the clipped extreme.
            new_m.append(_normalized(sums + M_PSEUDO_COUNT) if sums.sum() > 0 else m[c])
        change = max(abs(new_lam - lam) / lam, *(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)))
        lam, m = new_lam, new_m
        if change < tolerance:
            converged = True
            break
    return Parameters(names=names, m=m, u=u, lam=lam, iterations=iteration, converged=converged)


def u_from_counts(level_counts: np.ndarray, exact_probability: float | None = None) -> np.ndarray:
    """u of one comparison from sampled level counts, the top level replaced by an exact probability if given.

    Levels never seen in the sample get half a count, so their weight stays finite.
    """
    counts = level_counts.astype(float)
    total = counts.sum()
    if total <= 0:
        return _normalized(np.ones_like(counts))
    u = np.where(counts > 0, counts, 0.5) / total
    if exact_probability is not None:
        top = len(u) - 1
        rest = u[:top].sum()
        exact = min(max(exact_probability, PROBABILITY_FLOOR), 0.999)
        u[:top] = u[:top] / rest * (1.0 - exact) if rest > 0 else (1.0 - exact) / top
        u[top] = exact
    return _normalized(u)


def probability(weight: float | np.ndarray):
    """Match probability from a match weight: 2^w / (1 + 2^w)."""
    return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=float)))


def weight_for_probability(p: float) -> float:
    """The match weight at which the match probability equals ``p``."""
    return math.log2(p / (1.0 - p))
