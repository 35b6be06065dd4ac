"""Quality gates: `f1>=0.90`, `rmse<=3.2`, and "no worse than the promoted model".

A gate that does not parse, or names a metric the evaluation does not produce, is bad input
(`GateError`, exit 2): a typo must never pass silently as true. Pure: no store, no I/O.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from .errors import MlopsNbError

_GATE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.:/-]*)\s*(>=|<=|==|>|<)\s*"
                   r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
        "==": operator.eq}


class GateError(MlopsNbError):
    """A gate that does not parse or names an unknown metric."""


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


@dataclass
class GateResult:
    gate: str
    metric: str
    value: float | None
    passed: bool
    detail: str


def parse_gate(text: str) -> Gate:
    m = _GATE.match(text or "")
    if m is None:
        raise GateError(f"cannot parse gate {text!r}: write METRIC OP NUMBER, such as "
                        "'f1>=0.90' or 'rmse<=3.2' (OP is >=, <=, >, < or ==)")
    value = float(m[3])
    if not math.isfinite(value):
        raise GateError(f"gate {text!r}: the threshold must be a finite number")
    return Gate(m[1], m[2], value)


def parse_gates(texts: list[str] | None) -> list[Gate]:
    return [parse_gate(t) for t in texts or []]


def check_known(gates: list[Gate], metrics: dict[str, Any], where: str) -> None:
    """Refuse gates on metrics `where` does not record (before anything runs)."""
    unknown = sorted({g.metric for g in gates if g.metric not in metrics})
    if unknown:
        known = ", ".join(sorted(metrics)) or "none"
        raise GateError(f"gate metric(s) {', '.join(unknown)} unknown: {where} records "
                        f"{known}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def evaluate(gates: list[Gate], metrics: dict[str, Any]) -> list[GateResult]:
    """Each gate against `metrics`; a missing or non-numeric metric fails its gate."""
    out = []
    for g in gates:
        if g.metric not in metrics:
            raise GateError(f"gate {g}: the evaluation produced no metric {g.metric!r}")
        value = _number(metrics[g.metric])
        passed = value is not None and _OPS[g.op](value, g.threshold)
        out.append(GateResult(str(g), g.metric, value, passed,
                              f"{g.metric} = {value!r}, needs {g.op} {g.threshold:g}"))
    return out


def no_worse_than(candidate: dict[str, Any], reference: dict[str, Any], margin: float,
                  metrics: list[str], *, noise: dict[str, float] | None = None,
                  against: str = "promoted") -> list[GateResult]:
    """Candidate within `margin` of the reference on each metric (direction by its name:
    losses and errors lower-is-better); with `noise`, it must beat the reference by more
    than the metric's noise spread instead. `against` names the reference in the details
    (the promoted model re-evaluated on the same data, or its recorded metrics)."""
    from .metrics import resolve_goal

    if not math.isfinite(margin) or margin < 0:
        raise GateError("--no-worse-than needs a finite margin >= 0")
    out = []
    for name in metrics:
        c, r = _number(candidate.get(name)), _number(reference.get(name))
        if r is None:
            raise GateError(f"the {against} has no numeric metric {name!r}")
        goal = resolve_goal(name, None)
        sign = 1.0 if goal == "max" else -1.0
        gain = None if c is None else sign * (c - r)
        if noise is not None:
            spread = noise.get(name)
            if spread is None:
                raise GateError(f"no noise measured for {name!r}: run `mlops-nb reproduce "
                                "RUN --seeds 5` on the promoted run first")
            passed = gain is not None and gain > spread
            detail = (f"{name}: {c!r} vs {r!r} ({against}; {goal} is better), must beat it "
                      f"by more than the noise {spread:.4g}")
            label = f"{name} beats promoted by > noise"
        else:
            passed = gain is not None and gain >= -margin
            detail = (f"{name}: {c!r} vs {r!r} ({against}; {goal} is better), may be worse "
                      f"by at most {margin:g}")
            label = f"{name} no worse than promoted - {margin:g}"
        out.append(GateResult(label, name, c, passed, detail))
    return out
