#!/usr/bin/env bash
# The package as a user gets it: installs the build tree BUILD into a temporary prefix, checks that
# only public headers went in and that no build setting leaks into the exported targets, compiles
# every public header in a consumer with -Wall -Wextra -Wshadow -Wconversion -Werror, then builds
# examples/ as outside projects with find_package(gradlens) and runs them on the tutorial's
# pretrained weights (when SHARED_DIR has them); last, configures a parent project that takes
# gradlens with add_subdirectory (as FetchContent does) and checks that its build type, tests and
# install are left alone. Usage: tools/check_install.sh BUILD [SHARED_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
shared="${2:-$root/../shared}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"

fail() { echo "check_install: $*" >&2; exit 1; }
inc="$prefix/include"
[[ -f "$inc/gradlens/gradlens.h" ]] || fail "no gradlens/gradlens.h in $inc"
for internal in kernels/cpu kernels/cuda autograd/ops kernels/registry.h; do
  [[ ! -e "$inc/gradlens/$internal" ]] || fail "internal header installed: gradlens/$internal"
done
for top in attr autograd data kernels nn viz; do
  [[ ! -e "$inc/$top" ]] || fail "headers installed outside the gradlens/ prefix: $inc/$top"
done
targets="$(cat "$prefix"/lib*/cmake/gradlens/gradlensTargets*.cmake)"
for leak in march eigen3 Eigen3 nlohmann CLI11 -i cuda Werror; do
  if grep -q -- "$leak" <<<"$targets"; then fail "the exported targets mention '$leak'"; fi
done
# CUDA is a run-time choice: the package asks for no toolkit, the CUDA kernels are a plugin.
if grep -qi cuda "$prefix"/lib*/cmake/gradlens/gradlensConfig.cmake; then
  fail "gradlensConfig.cmake asks for CUDA"
fi
plugin="$(find "$prefix" -name libgradlens_cuda.so | head -1)"

# Every public header, in one consumer translation unit with strict warnings, then each on its own
# (a header must compile without the ones before it).
headers=()
while IFS= read -r h; do headers+=("${h#"$inc"/}"); done < <(find "$inc/gradlens" -name '*.h' | sort)
{ for h in "${headers[@]}"; do echo "#include <$h>"; done; echo "int main() { return 0; }"; } \
  > "$work/all_headers.cpp"
strict=(-std=c++20 -Wall -Wextra -Wshadow -Wconversion -Werror -I"$inc")
"${CXX:-c++}" "${strict[@]}" -fsyntax-only "$work/all_headers.cpp"
printf '%s\n' "${headers[@]}" |
  xargs -P "$(nproc)" -I{} sh -c 'echo "#include <{}>" | "$0" "$@" -fsyntax-only -x c++ -' \
    "${CXX:-c++}" "${strict[@]}"
echo "check_install: ${#headers[@]} public headers compile cleanly under ${strict[*]:1:5}"

# The examples, each an outside project against the installed package.
for example in "$root"/examples/*/; do
  name="$(basename "$example")"
  cmake -S "$example" -B "$work/$name" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON > "$work/$name.log"
  cmake --build "$work/$name" -j "$(nproc)" >> "$work/$name.log" || { cat "$work/$name.log"; exit 1; }
  echo "check_install: built examples/$name against the installed package"
done
needed="$(objdump -p "$work/pretrained_ig/explain" | grep NEEDED)"
if grep -qi -e cuda -e nvidia <<<"$needed"; then
  fail "examples/pretrained_ig needs a CUDA library to start: $needed"
fi
model="$shared/reference/cifar_net.safetensors"
if [[ -f "$model" && -d "$shared/cifar10" ]]; then
  "$work/pretrained_ig/explain" "$model" "$shared/cifar10" "$work/ig.png" 3
  [[ -s "$work/ig.png" ]] || fail "examples/pretrained_ig wrote no picture"
  # A few hundred steps only: this checks the program, not how well it learns.
  "$work/own_cnn/own_cnn" "$shared/cifar10" "$work" 300
  [[ -s "$work/smoothgrad.png" && -s "$work/gradcam.png" ]] || fail "examples/own_cnn wrote no picture"
  "$work/cpu_vs_gpu/cpu_vs_gpu" "$model" "$shared/cifar10" 32
  if [[ -x "$work/onnx_model/onnx_model" ]]; then  # built where the package has ONNX import
    "$work/onnx_model/onnx_model" "$shared/reference/resnet8/resnet8.onnx" "$shared/cifar10" \
      "$work" 200
    [[ -s "$work/ig.png" && -s "$work/gradcam.png" ]] || fail "examples/onnx_model wrote no picture"
  elif grep -q "gradlens_WITH_ONNX ON" "$prefix"/lib*/cmake/gradlens/gradlensConfig.cmake; then
    fail "the package has ONNX import but examples/onnx_model was not built"
  fi
  if [[ -n "$plugin" ]]; then
    # Without the plugin (a machine with no CUDA) a CPU program runs all the same; with it, the
    # installed plugin loads (on a machine without a GPU, cuda is then "no device", not "not found").
    GRADLENS_CUDA_BACKEND=/nonexistent/libgradlens_cuda.so \
      "$work/cpu_vs_gpu/cpu_vs_gpu" "$model" "$shared/cifar10" 8 > "$work/no_plugin.txt"
    GRADLENS_CUDA_BACKEND="$plugin" "$work/cpu_vs_gpu/cpu_vs_gpu" "$model" "$shared/cifar10" 8 \
      > "$work/plugin.txt"
    if grep -q "could not be loaded" "$work/plugin.txt"; then
      fail "the installed CUDA plugin does not load: $(cat "$work/plugin.txt")"
    fi
    echo "check_install: CPU programs run without the CUDA plugin; the installed plugin loads"
  fi
elif [[ -n "${CI:-}" ]]; then
  fail "CI is set but $model or $shared/cifar10 is missing"
else
  echo "check_install: $shared has no pretrained weights or CIFAR-10: examples not run"
fi

# As a subproject: the parent's cache keeps its own (empty) build type, and gradlens adds no tests,
# benchmarks, program or install rules of its own.
mkdir -p "$work/parent"
cat > "$work/parent/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(parent LANGUAGES CXX)
add_subdirectory("$root" gradlens)
add_executable(explain "$root/examples/pretrained_ig/main.cpp")
target_link_libraries(explain PRIVATE gradlens::gradlens)
CMAKE
cmake -S "$work/parent" -B "$work/parent/build" -DGRADLENS_CUDA=OFF > "$work/parent.log"
cache="$work/parent/build/CMakeCache.txt"
grep -q '^CMAKE_BUILD_TYPE:STRING=$' "$cache" || fail "gradlens set the parent's build type: $(grep '^CMAKE_BUILD_TYPE' "$cache")"
grep -q '^GRADLENS_BUILD_TESTS:BOOL=OFF$' "$cache" || fail "gradlens builds its tests inside a parent"
if grep -rq 'file(INSTALL' "$work/parent/build/gradlens" --include=cmake_install.cmake; then
  fail "gradlens installs itself with the parent"
fi
echo "check_install: as a subproject gradlens leaves the parent's build type, tests and install alone"
