#!/usr/bin/env bash
# The GPU check: this library on a GPU machine that has JAX, PyTorch and torchvision
# but no TensorFlow and no network (the H100/H200 machines we can test on).
#
#   bash scripts/gpu_check.sh --fetch-wheels   # here, with network: the wheels the GPU
#                                              # machine lacks, into .whl/ (carried there)
#   bash scripts/gpu_check.sh                  # there: the check, under 8 minutes on an H100
#
# The check:
#   1. installs the carried wheels (.whl/*.whl: keras, its namex and optree, pycocotools)
#      into /tmp/site, if .whl/ is there;
#   2. prints the devices (nvidia-smi, JAX's, PyTorch's);
#   3. runs the op-parity tests (the native ops and the box, proposal, ROI-align,
#      target, detection and loss ops against numpy) on the GPU, under JAX and PyTorch;
#   4. times, at GPU_CHECK_SIZE (1024) pixels, Mask R-CNN inference and a training step
#      in float32 and mixed precision beside torchvision's maskrcnn_resnet50_fpn on the
#      same GPU in the same run (scripts/benchmark.py --only mrcnn --backend
#      jax,torchvision --mixed-precision), then Siamese inference with 1 and 3
#      references (--only siamese);
#   5. trains the procedural demo for GPU_CHECK_DEMO_MINUTES (3) minutes on JAX and
#      prints the loss of its first and last steps, then evaluates it briefly.
#
# Settings (environment): GPU_CHECK_SIZE (1024), GPU_CHECK_REPEATS (2),
# GPU_CHECK_DEMO_MINUTES (3), GPU_CHECK_BENCH_BACKENDS (jax,torchvision),
# GPU_CHECK_TEST_BACKENDS (jax torch), GPU_CHECK_BENCH_TIMEOUT (150 s for each of the
# two benchmark runs), GPU_CHECK_DEMO_TIMEOUT (300 s), GPU_CHECK_SKIP_WHEELS (set:
# ignore .whl/),
# OUT (folder for the logs and JSON files; default gpu_check_out). On a CPU the
# same script runs (slowly), e.g. GPU_CHECK_SKIP_WHEELS=1 GPU_CHECK_SIZE=256
# GPU_CHECK_DEMO_MINUTES=1 PYTHON=.venv/bin/python bash scripts/gpu_check.sh
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
wheels="$repo/.whl"
python="${PYTHON:-python3}"

if [ "${1:-}" = "--fetch-wheels" ]; then
  # The GPU image has Python 3.12 with numpy, h5py, scipy, scikit-image, matplotlib,
  # tqdm, rich, absl-py, ml-dtypes and pytest; Keras and pycocotools are missing.
  mkdir -p "$wheels"
  grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
  keras_version="$("$python" -c 'import importlib.metadata as m; print(m.version("keras"))' 2>/dev/null || echo 3.15.1)"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$wheels" "keras==$keras_version" namex optree pycocotools
  ls -l "$wheels"
  exit $?
fi

out="${OUT:-$repo/gpu_check_out}"
mkdir -p "$out"
size="${GPU_CHECK_SIZE:-1024}"
repeats="${GPU_CHECK_REPEATS:-2}"
minutes="${GPU_CHECK_DEMO_MINUTES:-3}"
bench_backends="${GPU_CHECK_BENCH_BACKENDS:-jax,torchvision}"
test_backends="${GPU_CHECK_TEST_BACKENDS:-jax torch}"
bench_timeout="${GPU_CHECK_BENCH_TIMEOUT:-150}"
demo_timeout="${GPU_CHECK_DEMO_TIMEOUT:-300}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
# JAX takes 75% of the GPU at start by default; the benchmark runs torchvision in
# another process on the same GPU.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/jax_cache}"
status=0
started=$(date +%s)
phase() { echo; echo "=== [$(( $(date +%s) - started )) s] $*"; }

phase "1. wheels"
if [ -n "${GPU_CHECK_SKIP_WHEELS:-}" ]; then
  echo "GPU_CHECK_SKIP_WHEELS: using the installed packages"
elif ls "$wheels"/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$wheels"/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
  echo "installed $(ls "$wheels" | tr '\n' ' ')"
else
  echo "no .whl/: using the installed packages"
fi
# The project itself runs from the checkout (nothing to install).
export PYTHONPATH="$repo:$repo/lib:${PYTHONPATH:-}"

phase "2. devices"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null \
  || echo "nvidia-smi: not available"
"$python" - <<'EOF' 2>&1 | tee "$out/devices.txt"
import importlib.util, platform
print("python", platform.python_version())
for name in ("keras", "jax", "torch", "torchvision", "tensorflow", "pycocotools"):
    spec = importlib.util.find_spec(name)
    version = None
    if spec:
        import importlib.metadata as m
        try:
            version = m.version({"pycocotools": "pycocotools"}.get(name, name))
        except m.PackageNotFoundError:
            version = "?"
    print(f"{name:12} {version or 'not installed'}")
if importlib.util.find_spec("jax"):
    import jax
    print("jax devices:", jax.devices())
if importlib.util.find_spec("torch"):
    import torch
    print("torch cuda:", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

phase "3. op parity on the device"
ops_tests="tests/backends/test_native_ops.py tests/mrcnn/test_ops_boxes.py \
tests/mrcnn/test_ops_proposals.py tests/mrcnn/test_ops_roi_align.py \
tests/mrcnn/test_ops_targets.py tests/mrcnn/test_ops_detection.py tests/mrcnn/test_losses.py"
for backend in $test_backends; do
  echo "--- $backend"
  # shellcheck disable=SC2086
  KERAS_BACKEND="$backend" timeout 300 "$python" -m pytest $ops_tests -q -p no:cacheprovider \
    -o addopts="" 2>&1 | tee "$out/ops_$backend.log" | tail -n 4
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

# Two invocations, each with its own time limit, so that one slow compile cannot
# take the other's table with it.
phase "4a. benchmark at ${size}x${size}: Mask R-CNN ($bench_backends)"
timeout "$bench_timeout" "$python" scripts/benchmark.py --size "$size" --repeats "$repeats" \
  --warmup 1 --only mrcnn --backend "$bench_backends" --mixed-precision \
  --json "$out/benchmark_mrcnn.json" 2>"$out/benchmark_mrcnn.log" \
  | tee "$out/benchmark_mrcnn.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || { status=1; tail -n 20 "$out/benchmark_mrcnn.log"; }
phase "4b. benchmark at ${size}x${size}: Siamese Mask R-CNN (jax)"
timeout "$bench_timeout" "$python" scripts/benchmark.py --size "$size" --repeats "$repeats" \
  --warmup 1 --only siamese --backend jax --json "$out/benchmark_siamese.json" \
  2>"$out/benchmark_siamese.log" | tee "$out/benchmark_siamese.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || { status=1; tail -n 20 "$out/benchmark_siamese.log"; }

phase "5. procedural demo: $minutes minutes of training on JAX (compiling included)"
timeout "$demo_timeout" "$python" scripts/demo.py --backend jax --minutes "$minutes" \
  --eval-images 10 --output-dir "$out/demo" --figures-dir "$out/demo" 2>&1 \
  | tee "$out/demo.log" | grep -av "^training\|one-shot eval" | tail -n 30
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "--- the loss over the training:"
grep -a -E "^(trained|loss:)" "$out/demo.log" || status=1

phase "done (exit $status)"
exit $status
