#!/usr/bin/env bash
# The one prepared GPU check for a lent H100/H200. It runs the bundle that tools/gpu_bundle.sh
# built on the developer machine, so it needs no compiler, no package manager and no network:
#
#   here:        bash tools/gpu_bundle.sh --rehearse [--captum DIR]
#   the device:  run(command="bash tools/gpu_check.sh", carry=[".gpu-bundle"], timeout_s=420)
#
# It prints the machine (nvidia-smi, driver, CPU) and the bundle's commit first, then runs, each
# step under its own time limit, cut to what is left of a 285 s budget (GPU_CHECK_BUDGET), in order
# of importance: the gpu tests (4 shards in parallel), issue #10's data-set figures
# (bench/cpu_vs_gpu.py: every method over the 10,000 test images on the GPU, a few on the host
# CPU), the GPU benchmarks (training at batch 4, 64 and 256, inference at 1,000 and 10,000, IG and
# NoiseTunnel over IG for 1, 16 and 1,000 images), the yardstick (PyTorch + cuDNN on the same GPU,
# through Captum where the bundle carries it, with TF32 off, then on), the imported ResNet8 on the
# GPU (bench_onnx's _Cuda workloads, against resnet8_bench.py --device cuda), each kernel's time
# in IG over 1,000 images (ncu, where the host lets it read the counters), compute-sanitizer
# memcheck, racecheck and initcheck on a short attribution run (conv input gradient, max-pool
# backward, IG) and a short training run ("Device not supported", as on gVisor, counts as
# skipped), and the host CPU's kernel variants (tests and
# bench_cpu_variants: these hosts likely have the AVX-512 the developer machines may lack), then
# --precision tf32 against float32 (bench/tf32_diff.py: attribution differences, accuracy).
# $OUT gets at most 8 files: gpu_check.log, summary.txt, nvidia-smi.txt, bench_cuda.json,
# compare_cuda.json, compare_cuda_tf32.json, tf32_diff.json and logs.tar.gz (every step's full
# log, the tests' junit XML, cpu_vs_gpu.json, bench_onnx_cuda.json, compare_resnet8_cuda.json and
# bench_cpu_variants.json, kernel_times_ig1000.csv).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

B=${GPU_BUNDLE:-$PWD/.gpu-bundle}
OUT=${OUT:-$PWD/out/gpu_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOGS=$(mktemp -d)
exec > >(tee "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
BUDGET=${GPU_CHECK_BUDGET:-285}
JOBS=$(nproc)
declare -A RC=()
ORDER=()

# step NAME LIMIT CMD...: CMD under a timeout of LIMIT seconds, or less when less budget is left;
# its output in $LOGS/NAME.log, the tail printed here.
step() {
  local name=$1 limit=$2
  shift 2
  local remaining=$((BUDGET - SECONDS - 5))
  ORDER+=("$name")
  if ((remaining < 10)); then
    echo "=== $name: skipped, the ${BUDGET}s budget is spent"
    RC[$name]="skipped (budget spent)"
    return 1
  fi
  ((limit > remaining)) && limit=$remaining
  echo "=== $name (limit ${limit}s, at ${SECONDS}s): $*"
  local start=$SECONDS rc
  timeout --kill-after=5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  ((rc == 124 || rc == 137)) && echo "=== $name: TIMED OUT after ${limit}s"
  tail -n "${TAIL:-15}" "$LOGS/$name.log"
  echo "=== $name: rc=$rc in $((SECONDS - start))s"
  RC[$name]=$rc
  return "$rc"
}

summary() {
  local status=0 name
  for name in "${ORDER[@]}"; do
    case "$name" in  # the yardstick fails for the image's reasons, not ours
      yardstick*) ;;
      *) [[ "${RC[$name]}" =~ ^[0-9]+$ ]] && ((RC[$name] != 0)) && status=1 ;;
    esac
  done
  {
    echo "gpu_check summary (${SECONDS}s of ${BUDGET}s); bundle: $(sed -n 2p "$B/BUNDLE" 2>/dev/null)"
    for name in "${ORDER[@]}"; do printf '  %-16s %s\n' "$name" "${RC[$name]}"; done
    echo "gpu_check: $([[ $status == 0 ]] && echo PASS || echo FAIL)"
  } | tee "$OUT/summary.txt"
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
  ls -la "$OUT"
  exec >&- 2>&-
  wait "$TEE_PID" 2>/dev/null  # the log in $OUT is complete before the machine copies it back
  exit "$status"
}

date -u
if command -v nvidia-smi >/dev/null; then
  timeout 20 nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
  cat "$OUT/nvidia-smi.txt"
  timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap,clocks.max.sm \
    --format=csv
else
  echo "no nvidia-smi on PATH"
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $JOBS threads"
echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(uname -r)"
if [[ -f "$B/programs.tar.xz" && ! -d "$B/.bin" ]]; then
  tar -xJf "$B/programs.tar.xz" -C "$B" 2>/dev/null ||
    python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1]); t.extraction_filter = getattr(tarfile, "data_filter", None); t.extractall(sys.argv[2])' \
      "$B/programs.tar.xz" "$B"
fi
if [[ ! -x "$B/gradlens" || ! -d "$B/.bin" ]]; then
  echo "no bundle at $B: run tools/gpu_bundle.sh here and carry .gpu-bundle"
  ORDER+=(bundle)
  RC[bundle]=missing
  summary
fi
cat "$B/BUNDLE"

# The bundle's programs find their data and each other through these.
export GRADLENS_SHARED_DIR=$B/data GRADLENS_BINARY_DIR=$B CI=1
step info 20 "$B/gradlens" info || summary
HAVE_GPU=0
grep -qE "^cuda: +[0-9]+ device" "$LOGS/info.log" && HAVE_GPU=1

# Four shards of the gpu suite at once, each with a quarter of the cores for its CPU twin.
gpu_tests() {
  local i pids=() rc=0
  for i in 0 1 2 3; do
    GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$i GRADLENS_NUM_THREADS=$((JOBS / 4 > 0 ? JOBS / 4 : 1)) \
      "$B/tests/gradlens_gpu_tests" --gtest_output="xml:$LOGS/gpu_tests_$i.xml" \
      >"$LOGS/gpu_tests_$i.txt" 2>&1 &
    pids+=($!)
  done
  for i in 0 1 2 3; do wait "${pids[$i]}" || rc=1; done
  grep -hE "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests? ran" "$LOGS"/gpu_tests_*.txt
  return $rc
}
export -f gpu_tests
export B LOGS JOBS
TAIL=30 step gpu_tests 120 bash -c gpu_tests

# Issue #10's GPU figures: images/s, % of peak and seconds for all 10,000 test images per method.
if ((HAVE_GPU)); then
  TAIL=14 step cpu_vs_gpu 90 python3 bench/cpu_vs_gpu.py --gradlens "$B/gradlens" \
    --model "$B/data/reference/cifar_net.safetensors" --data "$B/data/cifar10" \
    --cpu-images 100 --gpu-images 10000 --repeats 1 --json "$LOGS/cpu_vs_gpu.json"
fi

step bench_cuda 80 "$B/bench/bench_cuda" --benchmark_min_time=0.1 \
  --benchmark_out="$OUT/bench_cuda.json" --benchmark_out_format=json

# The yardstick: the image's python3 and its PyTorch; Captum from the bundle when it carries one.
if timeout 60 python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  2>/dev/null; then
  [[ -d "$B/captum" ]] && export PYTHONPATH=$B/captum${PYTHONPATH:+:$PYTHONPATH}
  TAIL=25 step yardstick 60 python3 bench/compare.py --build "$B" --bench bench_cuda \
    --ours-json "$OUT/bench_cuda.json" --device cuda --threads "$JOBS" --min-time 0.2 \
    --repeats 1 --json "$OUT/compare_cuda.json"
else
  echo "=== yardstick: skipped, python3 has no torch with CUDA"
fi

# The imported ResNet8 on the GPU (issue #14), then PyTorch + cuDNN's twin through Captum.
if ((HAVE_GPU)); then
  step bench_onnx 45 "$B/bench/bench_onnx" --benchmark_filter=Cuda --benchmark_min_time=0.1 \
    --benchmark_out="$LOGS/bench_onnx_cuda.json" --benchmark_out_format=json
  if [[ -n "${RC[yardstick]:-}" && "${RC[bench_onnx]}" == 0 ]]; then
    TAIL=12 step yardstick_resnet8 45 python3 bench/compare.py --build "$B" --bench bench_onnx \
      --torch-script resnet8_bench.py --ours-json "$LOGS/bench_onnx_cuda.json" --device cuda \
      --threads "$JOBS" --min-time 0.2 --repeats 1 --json "$LOGS/compare_resnet8_cuda.json"
  fi
fi

# Each kernel's GPU time in IG over 1,000 images (one 50,000-row chunk), where ncu reads the
# counters (Firecracker hosts do, gVisor ones do not): the breakdown that says what to speed up.
# A CUDA tool: on PATH, else where the toolkit installs it.
cuda_tool() {
  local path
  path=$(command -v "$1") && { echo "$path"; return; }
  for path in "/usr/local/cuda/bin/$1" "/usr/local/cuda/$1/$1"; do
    [[ -x "$path" ]] && { echo "$path"; return; }
  done
}
NCU=$(cuda_tool ncu)
if [[ -n "$NCU" && $HAVE_GPU == 1 ]]; then
  TAIL=3 step kernel_times 30 "$NCU" --clock-control none --metrics gpu__time_duration.sum --csv \
    --print-units base --target-processes all --log-file "$LOGS/kernel_times_ig1000.csv" \
    "$B/gradlens" attribute integrated_gradients --device cuda --indices 0:1000 \
    --model "$B/data/reference/cifar_net.safetensors" --data "$B/data/cifar10" \
    --out "$LOGS/ig1000.safetensors"
  rm -f "$LOGS/ig1000.safetensors"
  # A host whose counters ncu cannot read (gVisor: "Failed to initialize the profiler") skips it.
  if grep -qE "Failed to initialize the profiler|ERR_NVGPUCTRPERM|LibraryNotLoaded" \
    "$LOGS/kernel_times.log" "$LOGS/kernel_times_ig1000.csv" 2>/dev/null; then
    RC[kernel_times]="skipped (no hardware counters)"
  fi
fi

SANITIZER=$(cuda_tool compute-sanitizer)
# sanitize TOOL NAME LIMIT ARGS...: the bundle's gradlens under compute-sanitizer; a device the
# sanitizer refuses is "skipped", not a failure.
sanitize() {
  local tool=$1 name=$2 limit=$3
  shift 3
  step "$name" "$limit" env GRADLENS_CUDA_SYNC=1 "$SANITIZER" --tool "$tool" --error-exitcode 1 \
    --print-limit 20 --target-processes all "$B/gradlens" "$@"
  if grep -q "Device not supported" "$LOGS/$name.log" 2>/dev/null; then
    RC[$name]="skipped (device not supported)"
  fi
}
if [[ -n "$SANITIZER" && $HAVE_GPU == 0 ]]; then
  echo "=== sanitizers: skipped, no GPU visible"
elif [[ -n "$SANITIZER" ]]; then
  WORK=$(mktemp -d)
  # Attribution: the conv input gradient, max-pool backward and IG's batched steps.
  attribution=(attribute integrated_gradients --device cuda --n-steps 8 --indices 0:2
    --model "$B/data/reference/cifar_net.safetensors" --data "$B/data/cifar10"
    --out "$WORK/ig.safetensors")
  training=(train --device cuda --limit 64 --epochs 1 --batch-size 16 --log-every 2
    --data "$B/data/cifar10" --out "$WORK/model.safetensors")
  sanitize memcheck memcheck_attr 25 "${attribution[@]}"
  sanitize memcheck memcheck_train 35 "${training[@]}"
  sanitize racecheck racecheck_attr 25 "${attribution[@]}"
  sanitize initcheck initcheck_attr 20 "${attribution[@]}"
  sanitize racecheck racecheck_train 60 "${training[@]}"  # the epoch's test-set eval: most of it
  rm -rf "$WORK"
else
  echo "=== sanitizers: skipped, no compute-sanitizer found"
fi

# The host CPU: every ISA variant of the CPU kernels it runs, tested and timed (developer machines
# may lack AVX-512; these hosts likely have it). Output in logs.tar.gz.
TAIL=12 step cpu_variants 40 bash -c "\"$B/tests/gradlens_tests\" --gtest_brief=1 \
  --gtest_filter='*CpuKernels*:*CpuVariants*:CpuDispatch*' && \"$B/bench/bench_cpu_variants\" \
  --benchmark_min_time=0.05 --benchmark_filter='/(64|1000)/' \
  --benchmark_out=$LOGS/bench_cpu_variants.json --benchmark_out_format=json"

# --precision tf32 against float32 on the same images: the attribution differences it costs.
if ((HAVE_GPU)); then
  TAIL=10 step tf32_diff 40 python3 bench/tf32_diff.py --gradlens "$B/gradlens" \
    --model "$B/data/reference/cifar_net.safetensors" --data "$B/data/cifar10" \
    --json "$OUT/tf32_diff.json"
fi

if [[ -n "${RC[yardstick]:-}" ]]; then
  TAIL=25 step yardstick_tf32 60 python3 bench/compare.py --build "$B" --bench bench_cuda \
    --ours-json "$OUT/bench_cuda.json" --device cuda --tf32 --threads "$JOBS" --min-time 0.2 \
    --repeats 1 --json "$OUT/compare_cuda_tf32.json"
fi
summary
