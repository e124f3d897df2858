#!/usr/bin/env bash
# clang-format over our C++ and CUDA sources: `tools/format.sh` rewrites, `--check` only reports
# (ctest runs the check as the `clang_format` test).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' 2>/dev/null || find . -name '*.h' -o -name '*.cpp')
if [[ "${1:-}" == "--check" ]]; then
  clang-format --dry-run -Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
