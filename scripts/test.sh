#!/usr/bin/env bash
# The project's test command (CI runs exactly this): sets up .venv if needed, then
# runs the whole suite on TensorFlow, then the backend-sensitive tests
# (MULTI_BACKEND_TESTS in tests/conftest.py) on JAX and on PyTorch.
#
# Extra arguments go to every pytest run, e.g. `bash scripts/test.sh tests/mrcnn -x`.
# TEST_BACKENDS chooses the backends, e.g. `TEST_BACKENDS=jax bash scripts/test.sh`
# (default "tensorflow jax torch").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${EXTRAS:-test,jax,torch,export}" source "$repo/scripts/setup_env.sh"
cd "$repo"
status=0
for backend in ${TEST_BACKENDS:-tensorflow jax torch}; do
  echo "=== pytest on the $backend backend ===" >&2
  start=$(date +%s)
  rc=0
  KERAS_BACKEND="$backend" python -m pytest "$@" || rc=$?
  # 5: nothing collected, e.g. arguments that name only TensorFlow-only files.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=1; fi
  echo "=== $backend: $(( $(date +%s) - start )) s ===" >&2
done
exit $status
