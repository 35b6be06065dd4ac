"""Which names are metrics, which way is better, and which run is best.

Pure rules shared by capture (auto-detecting metrics), the runs table, the comparison, the CLI
and export (`--best`), so "lower is better for loss" and "NaN never wins" are decided once.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Iterable
from typing import Any

METRIC_TOKENS = frozenset(
    {"accuracy", "acc", "f1", "precision", "recall", "auc", "r2", "mse", "rmse", "mae",
     "loss", "score", "roc_auc", "logloss", "mape", "ap"}
)
LOWER_IS_BETTER = frozenset({"loss", "mse", "rmse", "mae", "error", "logloss", "mape", "err",
                             "pvalue"})  # permutation_accuracy_pvalue: the smaller the surer
_SPLIT = re.compile(r"[_\W]+")


def _tokens(name: str) -> list[str]:
    return [t for t in _SPLIT.split(name.lower()) if t]


@functools.lru_cache(maxsize=4096)
def is_metric_name(name: str) -> bool:
    """`f1`, `val_loss`, `test_accuracy`, `roc_auc`, `r2_score`, `mean_squared_error`..."""
    lowered = name.lower()
    if lowered.startswith("_"):
        return False
    if lowered.endswith(("_score", "_error")) or "roc_auc" in lowered:
        return True
    return any(tok in METRIC_TOKENS for tok in _tokens(lowered))


def metric_goal(name: str) -> str:
    """'min' for losses and errors, 'max' otherwise: the default sort for "best"."""
    return "min" if any(t in LOWER_IS_BETTER for t in _tokens(name)) else "max"


def resolve_goal(metric: str, goal: str | None = None) -> str:
    """The direction in which `metric` gets better: `goal` as given, else from the name."""
    if goal is None:
        return metric_goal(metric.removeprefix("metrics."))
    if goal not in ("min", "max"):
        from .errors import MlopsNbError

        raise MlopsNbError(f"goal must be 'min' or 'max', not {goal!r}")
    return goal


def best_positions(values: Iterable[Any], goal: str) -> list[int]:
    """Positions of the values tied at the best one, in input order: the one "best run" rule.

    Only real numbers compete: NaN, text ("n/a", even "0.9"), bools and None never win, so a
    metric logged badly cannot become the run everyone exports. Infinity wins in its direction.
    Returns [] when no value is a number.

    Raises:
        MlopsNbError: `goal` is not 'min' or 'max'.
    """
    if goal not in ("min", "max"):
        from .errors import MlopsNbError

        raise MlopsNbError(f"goal must be 'min' or 'max', not {goal!r}")
    best: float | None = None
    tied: list[int] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            continue
        x = float(v)
        if math.isnan(x):
            continue
        if best is None or (x > best if goal == "max" else x < best):
            best, tied = x, [i]
        elif x == best:
            tied.append(i)
    return tied


def unknown_metric(name: str, known: Iterable[str], where: str = "") -> str:
    """Why `name` picks no metric, with the ones it most likely meant first: the metric a
    printed `Accuracy: 0.9` line or an `accuracy_score(...)` call made is `accuracy_score`,
    and `--metric accuracy` should say so rather than leave the user to guess."""
    import difflib

    names = list(dict.fromkeys(known))
    lowered = name.lower()
    close = [k for k in names if lowered in k.lower() or k.lower() in lowered]
    close += [k for k in difflib.get_close_matches(name, names, n=3, cutoff=0.6)
              if k not in close]
    text = f"no run has metric {name!r}{where}"
    if close:
        text += "; did you mean " + " or ".join(repr(k) for k in close[:3]) + "?"
    return text + f" (metrics here: {', '.join(names) or 'none'})"
