#!/usr/bin/env bash
# clang-format over our C++ and CUDA sources: `tools/format.sh` rewrites, `--check` only reports
# (ctest runs the check as the `clang_format` test).
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while IFS= read -r f; do [[ -f "$f" ]] && files+=("$f"); done < <(git ls-files '*.h' '*.cpp' '*.cu' '*.cuh')
if [[ "${1:-}" == "--check" ]]; then
  clang-format --dry-run -Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
