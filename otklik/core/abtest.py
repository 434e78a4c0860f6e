"""A/B tests, pure: which variant a contact sees, and what the results say.

`assign_variant(test_key, contact_id, splits)` is deterministic: the same contact always gets the same
variant of a test (a hash of the test key and the contact), and over many contacts the shares follow the
splits. Results: per variant the rate with a Wilson score interval, and a two-proportion z-test of each
variant against the first (the control). No I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

AB_VAR = "_ab"  # the conversation variable holding its open A/B tests (engine-owned)
BUCKETS = 10_000  # resolution of the split: 0.01 %
Z95 = 1.959963984540054  # the two-sided 95 % quantile of the normal distribution
ALPHA = 0.05


def bucket(test_key: str, contact_id: int | str) -> int:
    """The contact's place in [0, BUCKETS) for this test: uniform, stable, independent between tests."""
    digest = hashlib.sha256(f"{test_key}\x1f{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def check_splits(splits: Sequence[int | float]) -> list[float]:
    """Positive weights (percentages, normally adding up to 100) of 2–4 variants, else ValueError."""
    if not 2 <= len(splits) <= 4:
        raise ValueError("an A/B test has 2 to 4 variants")
    weights = [float(s) for s in splits]
    if any(not math.isfinite(w) or w <= 0 for w in weights):
        raise ValueError("every split must be a positive number")
    return weights


def assign_variant(test_key: str, contact_id: int | str, splits: Sequence[int | float]) -> int:
    """The index of the variant `contact_id` sees in test `test_key`; `splits` are the variants' weights."""
    weights = check_splits(splits)
    total = sum(weights)
    point = (bucket(test_key, contact_id) + 0.5) / BUCKETS * total
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if point < running:
            return index
    return len(weights) - 1  # pragma: no cover - float rounding at the very top


def wilson(conversions: int, sample: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 0) for an empty sample."""
    if sample <= 0:
        return 0.0, 0.0
    if not 0 <= conversions <= sample:
        raise ValueError("conversions must be between 0 and the sample")
    p = conversions / sample
    z2 = z * z
    centre = (p + z2 / (2 * sample)) / (1 + z2 / sample)
    half = z * math.sqrt(p * (1 - p) / sample + z2 / (4 * sample * sample)) / (1 + z2 / sample)
    low = 0.0 if conversions == 0 else max(0.0, centre - half)
    high = 1.0 if conversions == sample else min(1.0, centre + half)
    return low, high


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of x2/n2 against x1/n1: (z, two-sided p-value). (0, 1) when undefined."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: str
    sample: int
    conversions: int
    rate: float
    low: float
    high: float
    z: float | None  # against the control (the first variant); None for the control itself
    p_value: float | None
    significant: bool


def results(counts: Sequence[tuple[str, int, int]], alpha: float = ALPHA) -> list[VariantResult]:
    """`counts`: (variant, sample, conversions) in the test's order, the first being the control."""
    out: list[VariantResult] = []
    if not counts:
        return out
    _, n1, x1 = counts[0]
    for index, (variant, sample, conversions) in enumerate(counts):
        low, high = wilson(conversions, sample)
        rate = conversions / sample if sample else 0.0
        if index == 0:
            out.append(VariantResult(variant, sample, conversions, rate, low, high, None, None, False))
            continue
        z, p = two_proportion_z(x1, n1, conversions, sample)
        out.append(VariantResult(variant, sample, conversions, rate, low, high, z, p, p < alpha))
    return out
