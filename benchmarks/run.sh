#!/usr/bin/env bash
# The benchmarks in one command (issue 2: tracking overhead, listing, load_ext, MLflow ratio;
# issue 4: comparison widget and report); prints tables, writes benchmarks/results/*.json.
# Usage: bash benchmarks/run.sh [--quick] [--no-mlflow] [--keep] [--install-mlflow]
#   --install-mlflow  first installs the optional `bench` extra (mlflow) into .venv
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
install_mlflow=0
for a in "$@"; do
  if [ "$a" = "--install-mlflow" ]; then install_mlflow=1; else args+=("$a"); fi
done
if [ ! -x .venv/bin/python ]; then bash scripts/bootstrap.sh; fi
if [ "$install_mlflow" = 1 ]; then bash scripts/bootstrap.sh bench; fi
status=0
.venv/bin/python -m benchmarks.main "${args[@]}" || status=$?
# Issue 4: opening the comparison widget and writing the HTML report at 1k/10k/100k runs.
sizes=1000,10000,100000
for a in "${args[@]}"; do [ "$a" = "--quick" ] && sizes=1000,10000; done
echo
echo "comparison widget and report (targets at 10,000 runs: widget <= 1.5 s, report <= 5 s)"
.venv/bin/python benchmarks/bench_compare.py --sizes "$sizes" \
  --json benchmarks/results/compare-latest.json || status=$?
# Issue 11: data profile, validate, retrain overhead, profiling inside a tracked cell.
echo
echo "MLOps: profile (<= 50 ms at 1M x 20), validate (<= 2 s at 1M rows), retrain overhead (<= 1 s)"
quick=()
for a in "${args[@]}"; do [ "$a" = "--quick" ] && quick=(--quick); done
.venv/bin/python -m benchmarks.mlops "${quick[@]}" --json benchmarks/results/mlops-latest.json \
  || status=$?
# Issue 8: the writer's lag at many fast cells, with and without back-pressure.
echo
n=3000
for a in "${args[@]}"; do [ "$a" = "--quick" ] && n=1000; done
.venv/bin/python -m benchmarks.writer_lag --cells "$n" || status=$?
# Issue 14: the writer thread's CPU per record, against one json.dumps of it.
.venv/bin/python -m benchmarks.writer_cost || status=$?
# Issues 8 and 14: data cost (string hashing, read-only cells on a 2M-row frame, re-runs,
# chained cells, large literals); ratios against baselines measured in this same run.
echo
echo "data and lineage cost (issue 8 items 1-3, issue 14 string hashing)"
dc_args=()
for a in "${args[@]}"; do [ "$a" = "--quick" ] && dc_args+=(--quick); done
.venv/bin/python -m benchmarks.data_cost "${dc_args[@]}" \
  --json benchmarks/results/data-cost-latest.json || status=$?
# Issue 8: `mlops-nb export` and `show` of the last of 1k/5k/20k chained cells (CPU, peak RSS).
echo
chain=1000,5000,20000
for a in "${args[@]}"; do [ "$a" = "--quick" ] && chain=1000,5000; done
.venv/bin/python -m benchmarks.export_long --cells "$chain" \
  --out benchmarks/results/export-long-latest.json || status=$?
# Issues 14 and 8: listing 10k/100k runs (vs read_parquet), `mlops-nb runs` first screen and
# csv, `show` at 20,000 chained cells; CPU time and ratios from this same run.
echo
quick=()
for a in "${args[@]}"; do [ "$a" = "--quick" ] && quick=(--quick); done
.venv/bin/python -m benchmarks.listing suite "${quick[@]}" \
  --json benchmarks/results/listing-latest.json || status=$?
# Issue 14: the recorder's main-thread CPU per phase and per cell (hooks; whole cell on/off).
echo
echo "recorder CPU per cell (issue 14: RNG check <= 0.3 ms, AST <= 0.5 ms, whole recorder p95 <= 1 ms)"
cells=250
for a in "${args[@]}"; do [ "$a" = "--quick" ] && cells=100; done
.venv/bin/python -m benchmarks.overhead phases --cells "$cells" || status=$?
echo "the same with the machine busy: one CPU-bound process per core beside it"
.venv/bin/python -m benchmarks.overhead phases --cells "$cells" \
  --busy "$(.venv/bin/python -c 'import os; print(os.cpu_count() or 1)')" || status=$?
# The same hooks in simulated cycles (valgrind's callgrind; skipped without valgrind): a
# figure the machine's load cannot move, against the whole untracked cell.
echo
cycles=20
for a in "${args[@]}"; do [ "$a" = "--quick" ] && cycles=5; done
.venv/bin/python -m benchmarks.hook_cycles --cells "$cycles" || status=$?
# Issue 7: scikit-learn autologging (metric loop, plain cell, whole corpus notebooks).
echo
echo "scikit-learn autologging (targets: metric loop <= 1.05, plain cell <= 1 ms, notebooks <= 1.05)"
quick=()
for a in "${args[@]}"; do [ "$a" = "--quick" ] && quick=(--quick); done
.venv/bin/python -m benchmarks.autolog "${quick[@]}" \
  --json benchmarks/results/autolog-latest.json || status=$?
exit "$status"
