#!/usr/bin/env bash
# The embedded demo, the README's main command: sets up .venv if needed, then trains a
# small Siamese Mask R-CNN on the procedural benchmark's seen categories, evaluates
# one-shot AP on seen and unseen categories (and a random-reference baseline), and
# writes figures/demo_seen.png, figures/demo_unseen.png and runs/demo/results.json.
# Extra arguments go to scripts/demo.py, e.g. `bash scripts/demo.sh --minutes 5`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/setup_env.sh"
cd "$repo"
exec python scripts/demo.py "$@"
