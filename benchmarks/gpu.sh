#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: run the test suite on the GPU, then the jaxhw/PyTorch benchmarks, and
# write every figure to one folder (default benchmarks/gpu-results, or the first argument):
#   env.txt          the GPU (nvidia-smi), Python and package versions, the devices JAX sees
#   tests.log        pytest with JAX_PLATFORMS=cuda, its last line the pass/fail summary
#   benchmark.log    benchmarks/compare_torch.py's progress
#   RESULTS_GPU.md   its tables (the same layout as benchmarks/RESULTS.md), headed by the GPU's name
#   results.json     every raw number
# Usage (from the repository root, with jax[cuda12], flax, optax, torch and pytest installed):
#   bash benchmarks/gpu.sh [OUTDIR]
# Environment: PYTHON (default python3), BENCH_ARGS (extra compare_torch.py arguments, default
# "--epochs 5 --reps 2 --full"), TEST_TIMEOUT / BENCH_TIMEOUT (seconds, default 900 / 1800).
# The PyTorch side runs on the GPU when torch sees one (torch.cuda.is_available()), else on the CPU; the
# table's "threads" column and env.txt say which. Exit code: 0 when tests and benchmarks both ran and the
# tests passed, 1 when the tests failed, 2 when the benchmarks failed, 3 when no GPU is visible to JAX.
set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUTDIR="${1:-benchmarks/gpu-results}"
BENCH_ARGS="${BENCH_ARGS:---epochs 5 --reps 2 --full}"
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # one process at a time, but leave GPU memory to torch too

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: not found"
  "$PYTHON" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:  # noqa: BLE001
        print(name, "missing:", e)
try:
    import jax
    print("jax backend", jax.default_backend(), "devices", jax.devices())
except Exception as e:  # noqa: BLE001
    print("jax devices: error", e)
try:
    import torch
    print("torch cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:  # noqa: BLE001
    print("torch: error", e)
EOF
} > "$OUTDIR/env.txt" 2>&1
cat "$OUTDIR/env.txt"

if ! JAX_PLATFORMS=cuda "$PYTHON" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" 2>/dev/null; then
  echo "gpu.sh: JAX sees no GPU (install jax[cuda12]); nothing run. See $OUTDIR/env.txt" >&2
  exit 3
fi

echo "== tests, JAX_PLATFORMS=cuda"
# Without pytest-xdist (an image that has only pytest), the tests run in one process: pyproject's -n is dropped.
workers=()
"$PYTHON" -c "import xdist" 2>/dev/null || workers=(-o "addopts=-ra --durations=15")
JAX_PLATFORMS=cuda timeout "${TEST_TIMEOUT:-900}" "$PYTHON" -m pytest -q -ra -p no:cacheprovider "${workers[@]}" tests \
  > "$OUTDIR/tests.log" 2>&1
tests_rc=$?
tail -n 25 "$OUTDIR/tests.log"

echo "== benchmarks, JAX_PLATFORMS=cuda"
# The machine is not shared: do not wait for a low load average.
# shellcheck disable=SC2086
JAX_PLATFORMS=cuda timeout "${BENCH_TIMEOUT:-1800}" "$PYTHON" benchmarks/compare_torch.py $BENCH_ARGS \
  --load-waits 0 --results "$OUTDIR/RESULTS_GPU.md" --json "$OUTDIR/results.json" --notes /dev/null \
  > "$OUTDIR/benchmark.log" 2>&1
bench_rc=$?
tail -n 40 "$OUTDIR/benchmark.log"

echo "tests exit code $tests_rc, benchmarks exit code $bench_rc; figures in $OUTDIR"
if [ "$tests_rc" -ne 0 ]; then exit 1; fi
if [ "$bench_rc" -ne 0 ]; then exit 2; fi
exit 0
