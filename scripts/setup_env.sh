#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install the project
# into it with the extras in $EXTRAS (default "test"). Sourced by scripts/test.sh
# (EXTRAS="test,jax,torch,export": the suite runs on all three Keras backends and
# tests the ONNX export) and
# scripts/demo.sh. Re-installs only when setup.py or the extras changed since the
# last install. Override the interpreter with PYTHON=/path/to/python3.11.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
extras="${EXTRAS:-test}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv with $python" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.siamese_mrcnn_installed"
want="$( (cat "$repo/setup.py"; echo "$extras") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || ! grep -qx "$want" "$stamp"; then
  echo "[setup] installing siamese-mrcnn[$extras] and its requirements (first run: a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$repo[$extras]" >&2
  echo "$want" >> "$stamp"
fi
export PATH="$venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
