#!/usr/bin/env bash
# Command one: install mlops-nb into .venv and run notebooks/quickstart.ipynb end to end in a
# real Jupyter kernel: tracked training runs, then the table of runs and where they are stored.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/run_quickstart.py "$@"
