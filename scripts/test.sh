#!/usr/bin/env bash
# The project's test command: sets up .venv if needed, then runs the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/mrcnn -x`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup_env.sh"
cd "$repo"
exec python -m pytest "$@"
