"""One number format per column (comparison/numbers.py), on the vectors the view's twin
(`numberFormat` in runs_view.js, frontend/test/numbers.test.js) is tested with too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_nb.comparison.numbers import number_format

CASES = json.loads((Path(__file__).parent / "data" / "number_formats.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[json.dumps(c["values"]) for c in CASES])
def test_vectors(case):
    fmt = number_format(case["values"])
    got = [fmt(v) if fmt and type(v) in (int, float) else None for v in case["values"]]
    assert got == case["out"]


def test_a_column_of_rates_is_scientific_throughout_with_the_same_digits():
    fmt = number_format([5.91e-4, 0.00431678])
    assert fmt is not None
    texts = [fmt(5.91e-4), fmt(0.00431678)]
    assert texts == ["5.91000e-4", "4.31678e-3"]
    assert len({len(t) for t in texts}) == 1


def test_scores_share_their_decimals_and_integers_need_no_format():
    fmt = number_format([0.539, 0.6936])
    assert fmt is not None and [fmt(0.539), fmt(0.6936)] == ["0.5390", "0.6936"]
    assert number_format([1, 20, 300]) is None
    assert number_format(["auto", None]) is None
