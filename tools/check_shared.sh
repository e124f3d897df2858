#!/usr/bin/env bash
# The shared-library build (-DBUILD_SHARED_LIBS=ON) as a user gets it: builds the library alone from
# SOURCE (no CUDA, no tests), installs it into a temporary prefix, checks that libgradlens.so exports
# the public API only (GRADLENS_API, gradlens/export.h) and that its package asks for nothing
# else, then builds examples/ against it and runs the pretrained one (when SHARED_DIR has the
# weights). Usage: tools/check_shared.sh [SHARED_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${1:-$root/../shared}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "check_shared: $*" >&2; exit 1; }

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$work/build" "${generator[@]}" -DBUILD_SHARED_LIBS=ON -DGRADLENS_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=Release -DGRADLENS_BUILD_TESTS=OFF -DGRADLENS_BUILD_BENCH=OFF \
  -DGRADLENS_BUILD_TOOLS=OFF -DGRADLENS_INSTALL=ON > "$work/configure.log"
cmake --build "$work/build" -j "$(nproc)" > "$work/build.log" || { tail -40 "$work/build.log"; exit 1; }
prefix="$work/prefix"
cmake --install "$work/build" --prefix "$prefix" > /dev/null
lib="$(find "$prefix" -name 'libgradlens.so.*.*.*' | head -1)"
[[ -n "$lib" ]] || fail "no libgradlens.so.X.Y.Z installed"
[[ -z "$(find "$prefix" -name '*.a')" ]] || fail "static archives installed by a shared build"
objdump -p "$lib" > "$work/lib_headers.txt"
grep -q 'SONAME.*libgradlens\.so\.' "$work/lib_headers.txt" || fail "$lib has no versioned SONAME"

# Exported: the public API only. Internal namespaces and third-party code stay hidden.
nm -D --defined-only -C "$lib" > "$work/exports.txt"
for internal in 'gradlens::cpu::' 'gradlens::cuda::' 'gradlens::detail::cpu' 'Eigen::' 'nlohmann::'; do
  if grep -q -- "$internal" "$work/exports.txt"; then
    fail "libgradlens.so exports internals ($internal): $(grep -m3 -- "$internal" "$work/exports.txt")"
  fi
done
exported=$(grep -c ' gradlens::' "$work/exports.txt" || true)
((exported > 100)) || fail "libgradlens.so exports only $exported gradlens symbols"
echo "check_shared: libgradlens.so exports $exported gradlens symbols, no internals"

for example in "$root"/examples/*/; do
  name="$(basename "$example")"
  cmake -S "$example" -B "$work/$name" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_DISABLE_FIND_PACKAGE_PNG=ON \
    -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON --no-warn-unused-cli > "$work/$name.log" 2>&1
  cmake --build "$work/$name" >> "$work/$name.log" || { tail -30 "$work/$name.log"; exit 1; }
done
objdump -p "$work/pretrained_ig/explain" > "$work/explain_headers.txt"
grep -q 'NEEDED.*libgradlens\.so' "$work/explain_headers.txt" ||
  fail "examples/pretrained_ig does not use libgradlens.so"
echo "check_shared: built examples/ against the shared package"
model="$shared/reference/cifar_net.safetensors"
if [[ -f "$model" && -d "$shared/cifar10" ]]; then
  "$work/pretrained_ig/explain" "$model" "$shared/cifar10" "$work/ig.png" 3
  [[ -s "$work/ig.png" ]] || fail "examples/pretrained_ig wrote no picture"
  echo "check_shared: examples/pretrained_ig ran on libgradlens.so"
elif [[ -n "${CI:-}" ]]; then
  fail "CI is set but $model or $shared/cifar10 is missing"
fi
