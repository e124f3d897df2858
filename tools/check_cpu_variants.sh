#!/usr/bin/env bash
# Checks that each CPU-kernel variant object (cmake/cpu_variants.cmake) defines exactly one global
# symbol, its entry point gradlens_cpu_backend_<isa>: anything else global (an inline function, a
# template instance, a static local) could be merged with another variant's copy at link time and
# run AVX-512 code on a CPU without it.
#   bash tools/check_cpu_variants.sh build/kernels/cpu_kernels_*.o
set -euo pipefail
status=0
for object in "$@"; do
  isa=$(basename "$object" .o)
  isa=${isa#cpu_kernels_}
  globals=$(nm --defined-only --extern-only "$object" | awk '{print $3}')
  if [[ "$globals" != "gradlens_cpu_backend_$isa" ]]; then
    echo "$object: global symbols other than gradlens_cpu_backend_$isa:"
    grep -vx "gradlens_cpu_backend_$isa" <<<"$globals" | head -20 | c++filt | sed 's/^/  /'
    status=1
  else
    echo "$object: only gradlens_cpu_backend_$isa is global"
  fi
done
exit $status
