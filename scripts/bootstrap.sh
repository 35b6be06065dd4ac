#!/usr/bin/env bash
# Build (or refresh) the project's own virtual environment from pyproject.toml.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. "test" -> pip install -e '.[test]'
# Also builds the JupyterLab extension (labextension/, needs Node 20 + npm) and links it into
# .venv; MLOPS_NB_SKIP_FRONTEND=1 skips that for Python-only work.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
# The front end is built below with the venv's own jlpm, not inside pip's isolated build.
SKIP_JUPYTER_BUILDER=1 .venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -e "$spec" 2>&1 | { grep -v "^WARNING: Location" || true; }

if [ "${MLOPS_NB_SKIP_FRONTEND:-0}" = 1 ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1; then
  echo "bootstrap: node not found; the JupyterLab extension is not built" \
       "(MLOPS_NB_SKIP_FRONTEND=1 skips it on purpose)" >&2
  exit 0
fi
(
  cd labextension
  export PATH="$PWD/../.venv/bin:$PATH"
  # jlpm (yarn) uses the registry npm is configured with.
  YARN_NPM_REGISTRY_SERVER="$(npm config get registry)"
  export YARN_NPM_REGISTRY_SERVER="${YARN_NPM_REGISTRY_SERVER%/}"
  log="$(mktemp)"
  for step in "install --mode=skip-build" "build"; do
    # shellcheck disable=SC2086
    if ! jlpm $step >"$log" 2>&1; then
      echo "bootstrap: 'jlpm $step' failed in labextension/:" >&2
      tail -n 40 "$log" >&2
      exit 1
    fi
  done
  rm -f "$log"
)
# Link the built extension into .venv so this editable install's JupyterLab loads it.
if [ -x .venv/bin/jupyter-builder ]; then  # JupyterLab >= 4.6
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter-builder develop --overwrite . >/dev/null
else
  .venv/bin/jupyter labextension develop --overwrite . >/dev/null
fi
