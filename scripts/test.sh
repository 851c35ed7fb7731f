#!/usr/bin/env bash
# The test suite, in a fresh or refreshed .venv. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
