#!/usr/bin/env bash
# Build (or refresh) the project's own virtual environment from pyproject.toml.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. "test" -> pip install -e '.[test]'
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
