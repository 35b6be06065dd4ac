"""Schema checks of new data against a profile, expressed as a pandera schema.

The profile says which columns exist, their kind and dtype, their null rate, their range and
(when all of them were seen) their categories. We turn that into a `pandera.DataFrameSchema`
(required columns, `in_range`, `isin`, nullability) and let pandera find the failing values
lazily, so every violation is reported at once with examples, not the first one only. What
pandera has no check for (a dtype *kind* change, a null-rate jump) is compared here directly.

Severity: an *error* makes the data unusable for the run's script as it is (a missing column,
numbers turned into text, a column that is now all nulls or all infinite) and blocks a
retrain; a *warning*
(extra column, unseen category, values out of the training range in more than 1% of rows
or far out of it,
more nulls, a dtype change within the same kind) is reported and makes `validate` exit 1, but
does not block retraining; a *note* (a few values just past the old range, as any new sample
has) is shown and changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .profile import column_kind

NULL_JUMP = 0.05  # an absolute rise of the null fraction that is reported
RANGE_TOLERANCE = 0.01  # out-of-range values up to this fraction of rows are only a note
EXAMPLES = 5


@dataclass
class Finding:
    column: str | None
    check: str
    severity: str  # "error" or "warning"
    message: str
    failures: int = 0
    examples: list[str] = field(default_factory=list)


def _labels(s: Any) -> Any:
    """Values as the profile labelled them (strings cut to its label length, others their
    repr), computed once per distinct value: a per-row Python call costs seconds on a
    million rows."""
    import numpy as np
    import pandas as pd

    from .profile import MAX_LABEL, _label

    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return s.str.slice(0, MAX_LABEL)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    labels = np.array([_label(u) for u in uniques] + [None], dtype=object)
    return pd.Series(labels[codes], index=s.index, dtype=object)  # code -1 (NA) -> None


def _kind_group(kind: str) -> str:
    return "numeric" if kind in ("numeric", "bool") else kind


def _same_values_kind(dtype: Any, recorded: Any) -> bool:
    """Two dtypes that hold the same values differently: text as `category`, `str` or
    `object` (a CSV has no category type), or times at another resolution (`us` or `ns`).
    A change of type or of time zone is still said."""
    import re

    new, old = str(dtype), str(recorded or "")
    text = {"category", "str", "string", "object"}
    if new in text and old in text:
        return True
    unit = re.compile(r"^(datetime64|timedelta64)\[[a-z]+(, .*)?\]$")
    a, b = unit.match(new), unit.match(old)
    return bool(a and b and a.group(1) == b.group(1) and a.group(2) == b.group(2))


def _any_finite(ser: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(ser.to_numpy(dtype=np.float64, na_value=np.nan)).any())


def _integers_with_nulls(ser: Any, recorded: Any, nulls: int) -> bool:
    """An integer column read with a blank cell: pandas makes it float (or `Int64`), its
    values the same integers. The nulls are said (null rate), not a change of type."""
    import numpy as np
    import pandas as pd

    try:
        was_int = pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(str(recorded)))
    except TypeError:
        return False
    if not was_int:
        return False
    if pd.api.types.is_integer_dtype(ser.dtype):  # int64 -> Int64, int32 -> int64...
        return True
    if not (nulls and pd.api.types.is_float_dtype(ser.dtype)):
        return False
    values = ser.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[~np.isnan(values)]
    return bool(np.all(np.isfinite(values)) and np.all(np.floor(values) == values))


def structural_findings(ref: dict[str, Any], df: Any) -> tuple[list[Finding], set[str]]:
    """Findings pandera cannot express, and the columns safe to check further."""
    findings: list[Finding] = []
    checkable: set[str] = set()
    new_cols = {str(c): c for c in df.columns}
    ref_cols = ref.get("columns") or {}
    for name, col in ref_cols.items():
        if name not in new_cols:
            findings.append(Finding(name, "column_present", "error",
                                    f"column {name!r} is missing (the run's data had it)"))
            continue
        ser = df[new_cols[name]]
        if isinstance(ser, type(df)):  # duplicated column names
            findings.append(Finding(name, "unique_column", "error",
                                    f"column {name!r} appears more than once"))
            continue
        kind = column_kind(ser.dtype)
        old_kind = col.get("kind", "other")
        n = len(ser)
        nulls = int(ser.isna().sum())
        if n and nulls == n and col.get("null_fraction", 0.0) < 1.0:
            findings.append(Finding(name, "not_all_null", "error",
                                    f"column {name!r} is entirely null", failures=n))
            continue
        if (n and kind == "numeric" and old_kind == "numeric" and col.get("percentiles")
                and not _any_finite(ser)):
            findings.append(Finding(name, "finite", "error",
                                    f"column {name!r} has no finite value (all infinite or "
                                    "null)", failures=n - nulls))
            continue
        if _kind_group(kind) != _kind_group(old_kind):
            findings.append(Finding(
                name, "dtype", "error",
                f"column {name!r} is {kind} ({ser.dtype}) but was {old_kind} ({col.get('dtype')})"))
            continue
        if (str(ser.dtype) != col.get("dtype")
                and not _same_values_kind(ser.dtype, col.get("dtype"))
                and not _integers_with_nulls(ser, col.get("dtype"), nulls)):
            findings.append(Finding(name, "dtype", "warning",
                                    f"column {name!r} is {ser.dtype}, was {col.get('dtype')}"))
        frac = nulls / n if n else 0.0
        old = float(col.get("null_fraction") or 0.0)
        if frac - old > NULL_JUMP:
            findings.append(Finding(name, "null_rate", "warning",
                                    f"column {name!r} is {frac:.1%} null, was {old:.1%}",
                                    failures=nulls))
        elif nulls and not old:
            findings.append(Finding(name, "null_rate", "note",
                                    f"column {name!r} has {nulls} null(s) ({frac:.1%}), had "
                                    "none", failures=nulls))
        checkable.add(name)
    for name in new_cols:
        if name not in ref_cols and len(ref_cols) >= int(ref.get("columns_total") or 0):
            findings.append(Finding(name, "column_known", "warning",
                                    f"column {name!r} is new (the run's data did not have it)"))
    return findings, checkable


def _pandera_schema(ref: dict[str, Any], columns: set[str]) -> Any:
    import pandera.pandas as pa

    cols: dict[str, Any] = {}
    for name in columns:
        col = ref["columns"][name]
        checks = []
        if col.get("kind") == "numeric" and col.get("min") is not None:
            lo, hi = col["min"], col["max"]
            # an infinity the run's data had too is in its range
            lo = -math.inf if col.get("neginf_fraction") else lo
            hi = math.inf if col.get("posinf_fraction") else hi
            checks.append(pa.Check.in_range(lo, hi, name="in_training_range",
                                            ignore_na=True))
        elif col.get("kind") == "categorical" and col.get("complete") and col.get("top"):
            known = [k for k, _ in col["top"]]
            checks.append(pa.Check(lambda s, known=known: _labels(s).isin(known),
                                   element_wise=False, ignore_na=True,
                                   name="seen_category"))
        cols[name] = pa.Column(checks=checks, nullable=True, required=True, coerce=False)
    return pa.DataFrameSchema(cols, strict=False)


_CHECK_TEXT = {
    "in_range": ("range", "value(s) outside the training range"),
    "in_training_range": ("range", "value(s) outside the training range"),
    "seen_category": ("category", "unseen"),
}


def value_findings(ref: dict[str, Any], df: Any, columns: set[str]) -> list[Finding]:
    """Range and category violations found by pandera, grouped per column and check."""
    import pandera.errors as pe

    if not columns:
        return []
    if any(not isinstance(c, str) for c in df.columns):
        df = df.rename(columns={c: str(c) for c in df.columns})
    schema = _pandera_schema(ref, columns)
    try:  # inplace: pandera would otherwise copy (and consolidate) the whole frame
        schema.validate(df, lazy=True, inplace=True)
    except pe.SchemaErrors as exc:
        return _from_failure_cases(ref, exc.failure_cases, len(df))
    return []


def _from_failure_cases(ref: dict[str, Any], cases: Any, rows: int) -> list[Finding]:
    import pandas as pd

    out: list[Finding] = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        key = str(check).split("(")[0]
        label, what = _CHECK_TEXT.get(key, (key, f"failed {check}"))
        col = ref["columns"].get(str(column), {})
        examples = [str(v)[:40] for v in group["failure_case"].drop_duplicates().head(EXAMPLES)]
        msg = f"column {column!r}: {len(group)} {what}"
        if label == "category":  # rows, and how many labels they are: one new plan, or many
            labels = group["failure_case"].nunique(dropna=False)
            msg = (f"column {column!r}: {labels} unseen categor{'y' if labels == 1 else 'ies'}"
                   f" in {len(group)} row(s)")
        if label == "range":
            msg += f" [{col.get('min')}, {col.get('max')}]"
        severity = "warning"
        if label == "range" and len(group) <= RANGE_TOLERANCE * max(rows, 1):
            # a new sample always reaches a little past the old extremes: that is a note;
            # a value far past them (a tenth of the range) stays a warning
            lo, hi = col.get("min"), col.get("max")
            margin = 0.1 * (hi - lo) if lo is not None and hi is not None else 0.0
            vals = pd.to_numeric(group["failure_case"], errors="coerce")
            if lo is not None and hi is not None and vals.between(lo - margin,
                                                                   hi + margin).all():
                severity = "note"
        out.append(Finding(str(column), label, severity, msg, failures=len(group),
                           examples=examples))
    return out


def check_schema(ref: dict[str, Any], df: Any) -> list[Finding]:
    findings, checkable = structural_findings(ref, df)
    return findings + value_findings(ref, df, checkable)
