from __future__ import annotations

import mlops_nb as mnb


def test_effective_params_come_from_lineage(tracked):
    tracked.run("max_depth = 3\nunused = 'x'")
    tracked.run("other = 1")
    tracked.run("accuracy = max_depth / 10")
    df = mnb.runs()
    assert list(df["metrics.accuracy"]) == [0.3]
    assert df.loc[0, "params.max_depth"] == 3
