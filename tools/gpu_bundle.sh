#!/usr/bin/env bash
# Builds, here (nvcc, no GPU needed), everything a lent GPU machine runs, into one git-ignored
# folder that the device call carries: the device has nvcc, CMake and python3 with PyTorch, but none
# of our Debian packages and no registry.
#
#   bash tools/gpu_bundle.sh [--captum DIR] [--rehearse]
#
# .gpu-bundle/ mirrors a build folder, so every tool that takes --build takes it:
#   gradlens, tests/gradlens_gpu_tests, bench/bench_cuda, bench/bench_onnx (and
#   tests/gradlens_tests, bench/bench_cpu_variants for the host CPU's variants)
#              wrappers: each runs its program through the carried dynamic loader with only the
#              bundle's libraries (and the GPU driver's)
#   programs.tar.xz  .bin/ (the programs: Release, sm_90, portable CPU code (no -march), warnings
#              not errors) and .lib/ (every shared library ldd finds for them, glibc and its loader
#              included, except the GPU driver's own: libcuda, libnvidia-*), packed to fit the
#              60 MiB; gpu_check.sh unpacks them beside the wrappers
#   data/      the files the gpu tests and benchmarks read: reference/*.safetensors,
#              reference/resnet8/ (the imported ResNet8) and cifar10/test_batch.bin (which also
#              stands in for the five training batches); data/onnx-node/ (ONNX's node tests of the
#              imported ops) travels inside programs.tar.xz
#   captum/    with --captum DIR: Captum's pure-Python package from DIR (a checkout of its repo)
#   BUNDLE     the commit, date, sizes and what each program needs
# Nothing in it holds an absolute path of this machine. --rehearse then runs the bundle's CPU parts
# under `env -i` with nothing but the bundle, as the device will (no GPU: those tests skip).
# The device call: run(command="bash tools/gpu_check.sh", carry=[".gpu-bundle"]).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=.gpu-bundle
BUILD=build-bundle
LIMIT_MIB=60
CAPTUM=""
REHEARSE=0
while (($#)); do
  case "$1" in
    --captum) CAPTUM=$2; shift 2 ;;
    --rehearse) REHEARSE=1; shift ;;
    *) echo "usage: $0 [--captum DIR] [--rehearse]" >&2; exit 2 ;;
  esac
done

command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || { echo "gpu_bundle: nvcc not found" >&2; exit 1; }

# Explicit flags, so that neither a developer's environment (GRADLENS_WERROR) nor an old cache
# changes what travels.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADLENS_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DGRADLENS_NATIVE=OFF -DGRADLENS_WERROR=OFF \
  -DGRADLENS_SANITIZE=OFF -DGRADLENS_BUILD_TESTS=ON -DGRADLENS_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target gradlens_cli gradlens_gpu_tests bench_cuda \
  bench_onnx gradlens_tests bench_cpu_variants

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/.bin" "$BUNDLE/.lib" "$BUNDLE/tests" "$BUNDLE/bench" \
  "$BUNDLE/data/reference" "$BUNDLE/data/cifar10"
grep -qx "/$BUNDLE/" .git/info/exclude 2>/dev/null || echo "/$BUNDLE/" >>.git/info/exclude

# The CPU kernel tests and benchmark too: the device's host CPU is likely to have AVX-512, which
# the developer machines may lack (gpu_check.sh's cpu_variants step).
programs=("$BUILD/gradlens" "$BUILD/tests/gradlens_gpu_tests" "$BUILD/bench/bench_cuda"
  "$BUILD/bench/bench_onnx" "$BUILD/tests/gradlens_tests" "$BUILD/bench/bench_cpu_variants")
for p in "${programs[@]}"; do
  cp "$p" "$BUNDLE/.bin/"
  strip --strip-unneeded "$BUNDLE/.bin/$(basename "$p")"
done

# The CUDA kernels are a plugin the programs open at run time (gradlens/kernels/cuda/plugin.h): it
# goes to .lib/, on the wrappers' library path, where the loader's search finds it.
cp "$BUILD/lib/libgradlens_cuda.so" "$BUNDLE/.lib/"
strip --strip-unneeded "$BUNDLE/.lib/libgradlens_cuda.so"

# Libraries: whatever ldd resolves, followed through their own dependencies; the driver's stay.
loader=""
while read -r name path; do
  case "$name" in
    libcuda.so* | libnvidia*) continue ;;
  esac
  cp -L "$path" "$BUNDLE/.lib/$name"
  [[ "$name" == ld-linux* ]] && loader=$name
done < <(for p in "${programs[@]}" "$BUNDLE/.lib/libgradlens_cuda.so"; do ldd "$p"; done |
  awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\/.*ld-linux/ {n = $1; sub(/.*\//, "", n); print n, $1}' |
  sort -u)
[[ -n "$loader" ]] || { echo "gpu_bundle: ldd named no dynamic loader" >&2; exit 1; }

# One wrapper per program, at the path it has in a build folder. The driver's libraries come after
# the bundle's, so the bundle's glibc serves them too (a newer glibc runs an older driver's code).
for p in "${programs[@]}"; do
  rel=${p#"$BUILD"/}
  name=$(basename "$p")
  depth=$(($(tr -cd / <<<"$rel" | wc -c)))
  up=""
  for ((i = 0; i < depth; i++)); do up+="../"; done
  cat >"$BUNDLE/$rel" <<EOF
#!/bin/sh
# $name from the bundle, through its own loader and libraries (tools/gpu_bundle.sh).
b=\$(cd "\$(dirname "\$0")/$up" && pwd)
exec "\$b/.lib/$loader" --library-path "\$b/.lib:\${GRADLENS_DRIVER_LIBS:-/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:/usr/lib64:/usr/local/cuda/lib64/stubs}" "\$b/.bin/$name" "\$@"
EOF
  chmod +x "$BUNDLE/$rel"
done

SHARED=$(cd .. && pwd)/shared
for f in cifar_net public_inputs public_attributions public_stochastic test_logits \
  training_reference; do
  cp "$SHARED/reference/$f.safetensors" "$BUNDLE/data/reference/"
done
cp "$SHARED/cifar10/test_batch.bin" "$SHARED/cifar10/batches.meta.txt" "$BUNDLE/data/cifar10/"
# The imported ResNet8 (its weights for bench/resnet8_bench.py's PyTorch twin) and ONNX's node
# tests of the imported op families (tests/cuda/test_cuda_onnx.cpp).
mkdir -p "$BUNDLE/data/reference/resnet8" "$BUNDLE/data/onnx-node"
cp "$SHARED/reference/resnet8/resnet8.onnx" "$SHARED/reference/resnet8/inputs.safetensors" \
  "$SHARED/reference/resnet8/resnet8.safetensors" "$BUNDLE/data/reference/resnet8/"
node_tests=/usr/share/libonnx-testdata/data/node
if [[ -d "$node_tests" ]]; then
  for d in "$node_tests"/test_*; do
    [[ "$(basename "$d")" =~ ^test_(conv|basic_conv|maxpool|averagepool|globalaveragepool|relu|gemm|matmul|add|sub|mul|div|softmax|logsoftmax|flatten|reshape|concat|batchnorm|sum|reduce_sum|reduce_mean|transpose|sigmoid|tanh|leakyrelu|clip|constant_pad|exp|log|identity|dropout)(_|$) ]] &&
      cp -r "$d" "$BUNDLE/data/onnx-node/"
  done
fi
for i in 1 2 3 4 5; do  # smoke-test training only: 150 MB of training data would not travel
  ln -s test_batch.bin "$BUNDLE/data/cifar10/data_batch_$i.bin"
done

if [[ -n "$CAPTUM" ]]; then
  [[ -f "$CAPTUM/captum/__init__.py" ]] || { echo "gpu_bundle: no captum/ package in $CAPTUM" >&2; exit 1; }
  mkdir -p "$BUNDLE/captum"
  (cd "$CAPTUM" && find captum -name '*.py' -print0 | xargs -0 cp --parents -t "$OLDPWD/$BUNDLE/captum")
fi

glibc_needed=$(for f in "$BUNDLE"/.bin/*; do objdump -T "$f"; done | grep -o 'GLIBC_[0-9.]*' |
  sort -uV | tail -1)
sizes=$(du -sh "$BUNDLE"/.bin "$BUNDLE"/.lib)
# The node tests are thousands of small files: packed with the programs, where their 4 KiB
# blocks do not count against what may travel (gpu_check.sh unpacks them into data/ again).
# xz: 8.6 MiB where gzip took 15 (the six programs and their libraries); gpu_check.sh unpacks it
# with tar or, where the image has no xz, with python3's tarfile.
rm -f "$BUNDLE/programs.tar.gz"
tar -cJf "$BUNDLE/programs.tar.xz" -C "$BUNDLE" .bin .lib data/onnx-node
rm -rf "$BUNDLE/.bin" "$BUNDLE/.lib" "$BUNDLE/data/onnx-node"
{
  echo "gradlens GPU bundle"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.gpu-bundle' || echo ' (plus uncommitted changes)')"
  echo "built: $(date -u +%FT%TZ) on $(uname -m), $(nvcc --version | tail -2 | head -1)"
  echo "glibc needed: $glibc_needed (carried, with its loader: $(tar -tJf "$BUNDLE/programs.tar.xz" |
    grep '^\.lib/.' | sed 's|^\.lib/||' | tr '\n' ' '))"
  echo "captum: $([[ -n "$CAPTUM" ]] && (cd "$CAPTUM" && git rev-parse --short HEAD 2>/dev/null || echo copied) || echo none)"
  echo "$sizes"
  du -sh "$BUNDLE"/programs.tar.xz "$BUNDLE"/data $([[ -d "$BUNDLE/captum" ]] && echo "$BUNDLE/captum")
} >"$BUNDLE/BUNDLE"
cat "$BUNDLE/BUNDLE"
size_mib=$(du -sm "$BUNDLE" | cut -f1)
echo "bundle: $size_mib MiB in $BUNDLE"
if ((size_mib > LIMIT_MIB)); then
  echo "gpu_bundle: $size_mib MiB is over the ${LIMIT_MIB} MiB that may travel" >&2
  exit 1
fi

if ((REHEARSE)); then
  # The device's view: a copy somewhere else (no path of the build may matter), unpacked there, no
  # PATH entries of ours, no LD_LIBRARY_PATH, no build tree, no ../shared.
  b=$(mktemp -d)/bundle
  cp -a "$BUNDLE" "$b"
  tar -xJf "$b/programs.tar.xz" -C "$b"
  run() { env -i HOME=/tmp PATH=/usr/bin:/bin GRADLENS_SHARED_DIR="$b/data" \
    GRADLENS_BINARY_DIR="$b" CI=1 "$@"; }
  echo "=== rehearsal: gradlens info (the CUDA plugin must load from the bundle)"
  run "$b/gradlens" info | tee "$b/info.txt"
  grep -q "kernels $b/.lib/libgradlens_cuda.so" "$b/info.txt" ||
    { echo "gpu_bundle: the programs do not find the bundle's CUDA plugin" >&2; exit 1; }
  echo "=== rehearsal: eval of the pretrained Net on the CPU"
  run "$b/gradlens" eval --model "$b/data/reference/cifar_net.safetensors" --data "$b/data/cifar10"
  echo "=== rehearsal: the gpu suite (no GPU: it must skip cleanly, nothing may be missing)"
  run "$b/tests/gradlens_gpu_tests" --gtest_brief=1
  echo "=== rehearsal: the gpu suite's data, with the CPU standing in for the GPU (reference tests)"
  run env GRADLENS_CUDA_SUITE_ON_CPU=1 GRADLENS_CUDA_SUITE_SMALL=1 "$b/tests/gradlens_gpu_tests" \
    --gtest_brief=1 --gtest_filter='CudaNet.*:CudaAttr.*:CudaOnnx.*'
  echo "=== rehearsal: bench_cuda starts (no GPU: each benchmark reports the error)"
  run "$b/bench/bench_cuda" --benchmark_filter=Inference --benchmark_min_time=0.01 | tail -3
  echo "=== rehearsal: bench_onnx finds the ResNet8 (the CPU workload runs; the GPU ones report)"
  run "$b/bench/bench_onnx" --benchmark_filter='Eval_CPU|Cuda/16/' --benchmark_min_time=0.01 |
    tail -4
  echo "=== rehearsal: python3's tarfile unpacks the programs too (an image without xz)"
  python3 -c 'import sys, tarfile; print(len(tarfile.open(sys.argv[1]).getnames()), "entries")' \
    "$b/programs.tar.xz"
  echo "=== rehearsal: tools/gpu_check.sh itself, as the device runs it (no GPU: its steps skip)"
  rm -rf "$b/.bin" "$b/.lib"  # gpu_check.sh unpacks them itself
  env -i HOME=/tmp PATH=/usr/bin:/bin OUT="$b.check" GPU_BUNDLE="$b" GPU_CHECK_BUDGET=150 \
    bash tools/gpu_check.sh | tail -20
  rm -rf "$b" "$b.check"
  echo "=== rehearsal: passed"
fi
