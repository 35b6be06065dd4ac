#!/usr/bin/env bash
# The benchmarks of issue 2 in one command; prints the table, writes benchmarks/results/*.json.
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
exec .venv/bin/python -m benchmarks.main "${args[@]}"
