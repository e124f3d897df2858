#!/usr/bin/env bash
# The one prepared GPU check, run from a copy of the repo (no build dirs) on a lent H100/H200 with
# the data in ../shared: a Release CUDA build for sm_90, `ctest -L gpu`, bench_cuda, the PyTorch +
# cuDNN yardstick, and compute-sanitizer on a short training run. Logs, junit and JSON go to $OUT.
# It must fit in 5 minutes, so every step has a timeout cut to the time left, and the optional
# steps (yardstick, racecheck) come last and are skipped when the budget is spent.
#   OUT=/tmp/out bash tools/gpu_check.sh        (GPU_CHECK_BUDGET=seconds overrides 285)
#
# The device machine gets the repo but not the ../shared beside it. Before the device call, on the
# developer machine:
#   bash tools/gpu_check.sh --stage
# copies what the gpu tests read (the reference files and cifar10/test_batch.bin, about 45 MB) into
# .gpu-shared/, which .git/info/exclude keeps out of git; the device call then names it in `carry`
# (run: command "OUT=$OUT bash tools/gpu_check.sh", carry [".gpu-shared"]). There the script
# builds against it, with test_batch.bin standing in for the five training batches (the training
# runs here are smoke tests; 150 MB of training data would not fit the 64 MiB that travels).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

STAGE=.gpu-shared
if [[ "${1:-}" == "--stage" ]]; then
  set -e
  src=$(cd .. && pwd)/shared
  mkdir -p "$STAGE/reference" "$STAGE/cifar10"
  for f in cifar_net public_inputs public_attributions public_stochastic test_logits \
    training_reference; do
    cp -f "$src/reference/$f.safetensors" "$STAGE/reference/"
  done
  cp -f "$src/cifar10/test_batch.bin" "$src/cifar10/batches.meta.txt" "$STAGE/cifar10/"
  grep -qx "/$STAGE/" .git/info/exclude 2>/dev/null || echo "/$STAGE/" >>.git/info/exclude
  du -sh "$STAGE"
  exit 0
fi
OUT=${OUT:-$PWD/out/gpu_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/gpu_check.log") 2>&1
TEE_PID=$!

BUDGET=${GPU_CHECK_BUDGET:-285}
BUILD=build-gpu
JOBS=$(nproc)
SHARED=$(cd .. && pwd)/shared
if [[ ! -d "$SHARED/reference" && -d "$STAGE/reference" ]]; then
  SHARED=$PWD/$STAGE
  for i in 1 2 3 4 5; do  # training batches: the test batch stands in (see the header)
    [[ -e "$SHARED/cifar10/data_batch_$i.bin" ]] || ln -s test_batch.bin "$SHARED/cifar10/data_batch_$i.bin"
  done
  echo "using the staged $SHARED (test_batch.bin stands in for the training batches)"
fi
declare -A RC=()
ORDER=()

# step NAME LIMIT CMD...: CMD under a timeout of LIMIT seconds, or less when less budget is left;
# its output in $OUT/NAME.log, the tail printed here.
step() {
  local name=$1 limit=$2
  shift 2
  local remaining=$((BUDGET - SECONDS - 5))
  ORDER+=("$name")
  if ((remaining < 15)); then
    echo "=== $name: skipped, the ${BUDGET}s budget is spent"
    RC[$name]=skipped
    return 1
  fi
  ((limit > remaining)) && limit=$remaining
  echo "=== $name (limit ${limit}s, at ${SECONDS}s): $*"
  local start=$SECONDS rc
  timeout --kill-after=5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  ((rc == 124 || rc == 137)) && echo "=== $name: TIMED OUT after ${limit}s"
  tail -n "${TAIL:-20}" "$OUT/$name.log"
  echo "=== $name: rc=$rc in $((SECONDS - start))s"
  RC[$name]=$rc
  return "$rc"
}

summary() {
  echo "=== summary (${SECONDS}s of ${BUDGET}s)"
  local status=0 name
  for name in "${ORDER[@]}"; do
    printf '  %-12s %s\n' "$name" "${RC[$name]}"
    case "$name" in  # apt and the yardstick fail for the environment's reasons, not ours
      deps | yardstick) ;;
      *) [[ "${RC[$name]}" =~ ^[0-9]+$ ]] && ((RC[$name] != 0)) && status=1 ;;
    esac
  done
  ls -la "$OUT"
  echo "gpu_check: $([[ $status == 0 ]] && echo PASS || echo FAIL)"
  exec >&- 2>&-
  wait "$TEE_PID" 2>/dev/null  # the log in $OUT is complete before the machine copies it back
  exit "$status"
}

date -u
if command -v nvidia-smi >/dev/null; then
  timeout 20 nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  cat "$OUT/nvidia-smi.txt"
  timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
else
  echo "no nvidia-smi on PATH"
fi
[[ -d "$SHARED/reference" && -d "$SHARED/cifar10" ]] ||
  echo "WARNING: $SHARED lacks reference/ or cifar10/: the data tests will fail (CI=1)"

# Dependencies: install_deps.sh only where something is missing, and apt may be unreachable here.
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
missing=()
for c in cmake g++ nvcc; do command -v "$c" >/dev/null || missing+=("$c"); done
for p in libeigen3-dev libgtest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libpng-dev \
  libssl-dev zlib1g-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "missing: ${missing[*]}"
  step deps 60 bash tools/install_deps.sh || echo "install_deps failed (apt unreachable?): building anyway"
else
  echo "dependencies present"
fi
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
echo "$(cmake --version | head -1); $(g++ --version | head -1); $(nvcc --version | tail -2 | head -1)"

# Release, sm_90 only (H100/H200): half the CUDA compile time of the default 75;90.
step configure 60 cmake -S . -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DGRADLENS_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGRADLENS_SHARED_DIR="$SHARED" || summary
step build 180 cmake --build "$BUILD" -j"$JOBS" --target gradlens_gpu_tests gradlens_cli bench_cuda ||
  summary

# CI=1: a missing ../shared file fails instead of skipping. Four test processes share the GPU, each
# with a quarter of the cores for its CPU twin.
TAIL=40 step ctest_gpu 150 env CI=1 GRADLENS_NUM_THREADS=$((JOBS / 4 > 0 ? JOBS / 4 : 1)) \
  ctest --test-dir "$BUILD" -L gpu -j4 --timeout 120 --output-on-failure \
  --output-junit "$OUT/ctest_gpu.xml"
grep -E "Skipped|\*\*\*Not Run" "$OUT/ctest_gpu.log" | head -20

step bench_cuda 60 "$BUILD/bench/bench_cuda" --benchmark_min_time=0.1 \
  --benchmark_out="$OUT/bench_cuda.json" --benchmark_out_format=json

SANITIZER=$(command -v compute-sanitizer)
for s in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -z "$SANITIZER" && -x "$s" ]] && SANITIZER=$s
done
MODEL_DIR=$(mktemp -d)
if [[ -n "$SANITIZER" ]]; then
  # 50 steps of batch 4 and the test-set evaluation: every kernel of training and inference.
  # GRADLENS_CUDA_SYNC=1 waits after each launch, so a fault is pinned on the kernel that made it.
  step memcheck 100 env GRADLENS_CUDA_SYNC=1 "$SANITIZER" --tool memcheck --error-exitcode 1 --print-limit 50 \
    "$BUILD/gradlens" train --device cuda --limit 200 --epochs 1 --log-every 10 \
    --data "$SHARED/cifar10" --out "$MODEL_DIR/model.safetensors"
else
  echo "=== memcheck: skipped, no compute-sanitizer found"
fi

if timeout 60 /usr/bin/python3 -c \
  'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  TAIL=12 step yardstick 90 /usr/bin/python3 bench/compare.py --build "$BUILD" --bench bench_cuda \
    --device cuda --threads "$JOBS" --min-time 0.2 --repeats 1 --json "$OUT/compare_cuda.json"
else
  echo "=== yardstick: skipped, /usr/bin/python3 has no torch with CUDA"
fi

if [[ -n "$SANITIZER" ]]; then
  # Shared-memory races on one training step (racecheck is far slower than memcheck).
  step racecheck 60 env GRADLENS_CUDA_SYNC=1 "$SANITIZER" --tool racecheck --error-exitcode 1 --print-limit 20 \
    "$BUILD/bench/bench_cuda" --benchmark_filter='BM_TrainStep_Cuda/4' --benchmark_min_time=0.001
fi
rm -rf "$MODEL_DIR"
summary
