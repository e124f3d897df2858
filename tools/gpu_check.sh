#!/usr/bin/env bash
# The one prepared GPU check (run on a lent GPU machine, results to $OUT): build with CUDA, run the
# gpu-labelled tests and the GPU benchmarks. Must fit in 5 minutes.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
bash tools/install_deps.sh
cmake -S . -B build-gpu -G Ninja -DGRADLENS_CUDA=ON -DCMAKE_BUILD_TYPE=Release || exit 1
cmake --build build-gpu -j"$(nproc)" || exit 1
ctest --test-dir build-gpu -L gpu --output-on-failure --output-junit "$PWD/$OUT/ctest_gpu.xml"
tests_rc=$?
for b in build-gpu/bench/bench_*; do
  [[ -x "$b" ]] || continue
  "$b" --benchmark_filter='Cuda|CUDA' --benchmark_min_time=0.05 \
    --benchmark_out="$OUT/$(basename "$b").json" --benchmark_out_format=json
done
echo "gpu tests rc=$tests_rc"
exit $tests_rc
