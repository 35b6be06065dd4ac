"""The side-by-side benchmark's arithmetic (the runs themselves take minutes: run by hand)."""

from __future__ import annotations

import pytest

from benchmarks.paired import main, summarise


def _round(scale: float) -> dict:
    return {kind: {"hook_cpu_p50_s": 0.001 * scale, "hook_cpu_p95_s": 0.002 * scale}
            for kind in ("fifty", "workload", "sklearn")}


def test_sums_each_side_over_the_rounds_both_completed_and_gives_the_ratio():
    this = [_round(1.0), _round(0.5), _round(3.0)]  # a third round the other side never ran
    other = [_round(2.0), _round(1.0)]
    got = summarise(this, other)
    assert got["fifty"]["hook_cpu_p95_s"]["this"] == pytest.approx(0.003)
    assert got["fifty"]["hook_cpu_p95_s"]["other"] == pytest.approx(0.006)
    assert got["sklearn"]["hook_cpu_p50_s"]["ratio"] == pytest.approx(0.5)


def test_refuses_a_folder_without_another_tree(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "git worktree add" in capsys.readouterr().err
