"""Drift of new data against a recorded profile, one column at a time.

Numbers: Kolmogorov-Smirnov of the new values against the reference distribution rebuilt from
its 101 percentiles (`scipy.stats.kstest`), and the population stability index over the
reference deciles. Categories: chi-square of new counts against the reference frequencies
(`scipy.stats.chisquare`) and PSI over the same categories. A column drifts when the test is
significant (p < alpha) *and* the shift is material (PSI >= psi): with a million rows every
test is significant, and PSI alone ignores sample size. Pure: no store, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ALPHA = 0.01
DEFAULT_PSI = 0.1
TEST_SAMPLE = 5_000  # new values entering a test; more only makes p-values smaller
PSI_EPS = 1e-4


@dataclass
class Thresholds:
    alpha: float = DEFAULT_ALPHA
    psi: float = DEFAULT_PSI


@dataclass
class ColumnDrift:
    column: str
    test: str | None  # "ks", "ks+inf" (and the shares of infinities), "chi2" or None
    statistic: float | None = None
    p_value: float | None = None
    psi: float | None = None
    drifted: bool = False
    note: str | None = None
    # for the small plot: reference vs new, on the same bins or categories
    labels: list[str] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)


def psi(expected: Any, actual: Any) -> float:
    """Population stability index of two frequency vectors over the same bins."""
    import numpy as np

    e = np.clip(np.asarray(expected, dtype=float), PSI_EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), PSI_EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _reference_cdf(percentiles: list[float]) -> Any:
    import numpy as np

    xs = np.asarray(percentiles, dtype=float)
    ps = np.linspace(0.0, 1.0, len(xs))
    xs, idx = np.unique(xs, return_index=True)  # flat stretches: keep the first probability
    ps_hi = np.append(ps[idx[1:] - 1], 1.0) if len(idx) > 1 else np.array([1.0])

    def cdf(x: Any) -> Any:
        # right-continuous step at repeated values, linear in between
        return np.interp(x, xs, ps_hi, left=0.0, right=1.0)

    return cdf


def _thin(values: Any, size: int = TEST_SAMPLE) -> Any:
    import numpy as np

    if len(values) <= size:
        return values
    return values[np.linspace(0, len(values) - 1, size).astype(np.int64)]


def numeric_drift(name: str, ref: dict[str, Any], values: Any, th: Thresholds) -> ColumnDrift:
    """`values`: float array of the new column (NaN = missing). Infinities are values: the
    shares of -inf and +inf are bins of the PSI and tested against the reference's (from its
    profile; none in older profiles) beside the KS test of the finite values, so a column
    turning infinite drifts."""
    import numpy as np
    from scipy import stats

    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    pct = ref.get("percentiles")
    if not pct:
        return ColumnDrift(name, None, note="no reference values (the column was all null)")
    if present.size == 0:
        return ColumnDrift(name, None, note="no new values (the column is all null)")
    edges = np.unique(np.asarray(pct, dtype=float)[::10])
    inner = edges[1:-1]
    ref_frac = np.diff(np.interp(np.concatenate(([-np.inf], inner, [np.inf])),
                                 np.asarray(pct, dtype=float), np.linspace(0, 1, len(pct)),
                                 left=0.0, right=1.0))
    if len(ref_frac) == 1:  # a constant reference column
        ref_frac = np.array([1.0])
    new_counts = np.bincount(np.searchsorted(inner, finite, side="right"),
                             minlength=len(inner) + 1)
    labels = [f"≤{x:.3g}" for x in inner] + [f">{inner[-1]:.3g}" if len(inner) else "all"]
    neg, pos = (float(ref.get(k) or 0.0) for k in ("neginf_fraction", "posinf_fraction"))
    new_neg = int(np.count_nonzero(present == -np.inf))
    new_pos = int(present.size - finite.size) - new_neg
    if neg or pos or new_neg or new_pos:
        ref_frac = np.concatenate(([neg], ref_frac * (1.0 - neg - pos), [pos]))
        new_counts = np.concatenate(([new_neg], new_counts, [new_pos]))
        labels = ["-inf", *labels, "+inf"]
    new_frac = new_counts / new_counts.sum()
    score = psi(ref_frac, new_frac)
    stat = p = None
    if finite.size:
        res = stats.kstest(np.sort(_thin(finite)), _reference_cdf(pct))
        stat, p = float(res.statistic), float(res.pvalue)
    note = None
    if labels[0] == "-inf":
        # the shares of -inf, finite, +inf against the reference's (chi-square, counts capped
        # as for categories); either test may find the drift: p is the smaller, doubled
        shares = np.clip([neg, 1.0 - neg - pos, pos], PSI_EPS, None)
        counts = np.array([new_neg, finite.size, new_pos], dtype=float)
        counts *= min(1.0, TEST_SAMPLE / counts.sum())
        chi = stats.chisquare(counts, shares / shares.sum() * counts.sum())
        share = (new_neg + new_pos) / present.size
        note = (f"infinite: {share:.1%} of values, was {neg + pos:.1%} (chi2 statistic="
                f"{float(chi.statistic):.3g})")
        p = min(1.0, 2 * min(float(chi.pvalue), 1.0 if p is None else p))
    test = "ks" if note is None else "ks+inf"  # statistic: the KS one, of the finite values
    return ColumnDrift(name, test, stat, p, score, p < th.alpha and score >= th.psi,
                       note=note, labels=labels, reference=[float(x) for x in ref_frac],
                       new=[float(x) for x in new_frac])


def categorical_drift(name: str, ref: dict[str, Any], values: Any, th: Thresholds
                      ) -> ColumnDrift:
    """`values`: the new column (None/NaN = missing)."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    if ref.get("high_cardinality"):
        return ColumnDrift(name, None, note=f"not tested: {ref.get('cardinality')} distinct "
                                            "values, an identifier rather than a category")
    top = ref.get("top") or []
    if not top:
        return ColumnDrift(name, None, note="no reference values (the column was all null)")
    labels = [k for k, _ in top]
    if ref.get("discrete"):
        new, total = _discrete_counts(labels, values)
    else:
        from .profile import _label

        counts = pd.Series(values, copy=False).value_counts(dropna=True)
        counts.index = counts.index.map(_label)  # labels as the profile made them
        counts = counts.groupby(level=0).sum()
        total = int(counts.sum())
        new = [int(counts.get(k, 0)) for k in labels]
    if total == 0:
        return ColumnDrift(name, None, note="no new values (the column is all null)")
    ref_frac = [float(f) for _, f in top]
    other_ref = float(ref.get("other_fraction") or 0.0)
    other_new = total - sum(new)
    if other_ref > 0 or other_new > 0:
        labels.append("(other)")
        ref_frac.append(other_ref)
        new.append(other_new)
    ref_arr = np.clip(np.asarray(ref_frac), PSI_EPS, None)
    ref_arr = ref_arr / ref_arr.sum()
    new_arr = np.asarray(new, dtype=float)
    # the test's power grows with n: cap the counts as TEST_SAMPLE draws would give
    scale = min(1.0, TEST_SAMPLE / total)
    observed = new_arr * scale
    expected = ref_arr * observed.sum()
    stat, p = stats.chisquare(observed, expected)
    score = psi(ref_arr, new_arr / total)
    return ColumnDrift(name, "chi2", float(stat), float(p), score,
                       bool(p < th.alpha and score >= th.psi), labels=labels,
                       reference=[float(x) for x in ref_arr],
                       new=[float(x) for x in new_arr / total])


def _number(label: str) -> float:
    """The number a discrete column's label names: `3`, `3.0`, `np.int64(3)`; else NaN."""
    import re

    match = re.fullmatch(r"np\.\w+\((.*)\)", label)
    try:
        return float(match.group(1) if match else label)
    except ValueError:
        return math.nan


def _discrete_counts(labels: list[str], values: Any) -> tuple[list[int], int]:
    """(new count per reference label, non-null total) of a column of a few integers,
    matched by number, not by text: read with one blank cell, an integer column is float
    (`3.0`) while its profile said `3`, and every value was an unseen category. Nulls are
    left to the schema's null rate; any other value (3.5, inf) counts as "(other)"."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    uniques, counts = np.unique(present, return_counts=True)
    by_value = dict(zip(uniques.tolist(), counts.tolist(), strict=True))
    return [int(by_value.get(_number(k), 0)) for k in labels], int(present.size)


def _finite_or_none(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None
