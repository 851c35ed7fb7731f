#!/usr/bin/env bash
# The test suite, in a fresh or refreshed .venv, on every core (pytest-xdist; a module's shared fixture stays on one
# worker: --dist loadgroup). Extra arguments go to pytest (e.g. -m "not slow", or -n 0 to run in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
exec .venv/bin/python -m pytest -n auto --dist loadgroup "$@"
