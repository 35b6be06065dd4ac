#!/usr/bin/env bash
# Command two: install mlops-nb with its test dependencies into .venv and run the whole suite
# (lint, unit tests, real IPython shells, real kernels, the Jupyter server extension, the
# JupyterLab extension in a real browser). Extra arguments go to the first pytest run.
# Three pytest processes: pytest-jupyter's event-loop fixtures are autouse, and they clash
# with playwright's sync API, so the server and browser tests each get their own.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's Chromium (never a browser a tool downloads); install it when
# it is missing, so this one command does all set-up on a fresh machine.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
if [ "${MLOPS_NB_SKIP_FRONTEND:-0}" != 1 ] && command -v node >/dev/null 2>&1; then
  (cd labextension && PATH="$PWD/../.venv/bin:$PATH" jlpm test)
fi
.venv/bin/python -m pytest -m "not ui" --ignore=tests/lab "$@"
.venv/bin/python -m pytest -p pytest_jupyter.jupyter_server -m "not ui" -q tests/lab
exec .venv/bin/python -m pytest -m ui -q tests/lab
