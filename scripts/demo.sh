#!/usr/bin/env bash
# The main job on the embedded default data: grade the reference and a flawed sample, print the reports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
exec .venv/bin/python -m autograder demo "$@"
