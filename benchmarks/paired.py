"""Two versions of the recorder measured side by side, for a change too small for `phases`
run after run to resolve on a shared machine (its speed moves by 2x within minutes there).

Each round starts `phases` for this tree and for OTHER together, one process each, and waits
for both: whatever the machine does in those seconds, both versions see it. Per cell kind it
prints the whole recorder's main-thread CPU at the median and the 95th percentile, summed over
the rounds for each side, and their ratio this / OTHER.

    python -m benchmarks.paired OTHER [--rounds 4] [--cells 250] [--busy N] [--out FILE]

OTHER is a folder holding the other version's `mlops_nb` and `benchmarks` (`git worktree add
/tmp/base <commit>`); each side runs from its own folder, so `-m` imports its own package.
With `--busy N`, N CPU-bound processes run beside each pair (as `phases --busy`, started once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import ROOT, write_out
from .overhead import _busy as busy_machine

KINDS = ("fifty", "workload", "sklearn")
FIGURES = ("hook_cpu_p50_s", "hook_cpu_p95_s")


def summarise(this: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]
              ) -> dict[str, dict[str, dict[str, float]]]:
    """{kind: {figure: {"this", "other", "ratio"}}}: each figure summed over the rounds that
    both sides completed (a sum weighs each round by the machine's speed then, alike for
    both sides)."""
    pairs = list(zip(this, other, strict=False))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        for figure in FIGURES:
            a = sum(r[kind][figure] for r, _ in pairs if kind in r)
            b = sum(o[kind][figure] for _, o in pairs if kind in o)
            out.setdefault(kind, {})[figure] = {
                "this": a, "other": b, "ratio": a / b if b else float("nan")}
    return out


def _phases(tree: Path, cells: int, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.overhead", "phases", "--cells", str(cells),
         "--out", str(out)], cwd=tree, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def run(other: Path, rounds: int, cells: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {"this": [], "other": []}
    with tempfile.TemporaryDirectory(prefix="mnb-paired-") as tmp:
        for r in range(rounds):
            outs = {side: Path(tmp) / f"{side}{r}.json" for side in results}
            procs = {side: _phases(tree, cells, outs[side])
                     for side, tree in (("this", ROOT), ("other", other))}
            for side, proc in procs.items():
                path = outs[side]
                _, err = proc.communicate()
                if proc.returncode != 0 or not path.exists():
                    raise RuntimeError(f"phases failed for {side}: {err.decode()[-2000:]}")
                results[side].append(json.loads(path.read_text()))
    return {"rounds": results, "summary": summarise(results["this"], results["other"])}


def print_table(summary: dict[str, dict[str, dict[str, float]]], other: Path,
                rounds: int) -> None:
    print(f"whole recorder, main-thread CPU summed over {rounds} side-by-side rounds (ms); "
          f"this tree / {other}")
    print(f"{'cells':<10} {'figure':<8} {'this':>8} {'other':>8} {'ratio':>7}")
    for kind, figures in summary.items():
        for figure, v in figures.items():
            name = "p50" if "p50" in figure else "p95"
            print(f"{kind:<10} {name:<8} {v['this'] * 1e3:8.3f} {v['other'] * 1e3:8.3f} "
                  f"{v['ratio']:7.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", type=Path, help="a folder with the other version's tree")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cells", type=int, default=250)
    ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside each pair")
    ap.add_argument("--out", help="write the rounds and the summary as JSON")
    args = ap.parse_args(argv)
    other = args.other.resolve()
    if not (other / "mlops_nb").is_dir() or not (other / "benchmarks").is_dir():
        ap.error(f"{other} holds no mlops_nb/ and benchmarks/ (git worktree add it)")
    with busy_machine(args.busy):
        res = run(other, args.rounds, args.cells)
    print_table(res["summary"], other, args.rounds)
    if args.out:
        write_out(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
