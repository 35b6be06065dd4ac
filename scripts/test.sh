#!/usr/bin/env bash
# Command two: install mlops-nb with its test dependencies into .venv and run the whole suite
# (lint, unit tests, real IPython shells, real kernels). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
