#!/usr/bin/env bash
# Fuzzes the readers of files a user may be handed (fuzz/: safetensors, CIFAR-10, PNG, the npm
# package's sprite rows) and the command line (parse-only: no file is touched) with libFuzzer under ASan + UBSan, SECONDS each (default 60), starting
# from generated seeds of valid files (fuzz/make_seeds.py), the regression inputs kept in
# fuzz/corpus/<target>/ (where there are any) and what earlier runs found (build-fuzz/corpus/).
# A finding stops its target, leaves crash-* in build-fuzz/ and makes this script fail: fix it and
# add the input to fuzz/corpus/<target>/ as a regression input. Prints executions per target.
#   bash tools/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz
command -v clang++ >/dev/null || { echo "fuzz: needs clang++ (apt-get install -y clang)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRADLENS_FUZZ=ON -DGRADLENS_CUDA=OFF -DGRADLENS_BUILD_TESTS=OFF -DGRADLENS_BUILD_BENCH=OFF \
  -DGRADLENS_BUILD_TOOLS=ON -DGRADLENS_WERROR=OFF >/dev/null
targets=(safetensors cifar10 png tfjs_rows cli)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

python3 fuzz/make_seeds.py "$build/seeds"
status=0
root=$(pwd)
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  inputs=("corpus/$t" "seeds/$t")
  [[ -d fuzz/corpus/$t ]] && inputs+=("$root/fuzz/corpus/$t")
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="$root/fuzz/$t.dict")
  [[ -f $build/seeds/$t.dict ]] && dict=(-dict="$root/$build/seeds/$t.dict")
  log="$build/fuzz_$t.log"
  # New inputs go to the first folder (build-fuzz/corpus/<target>); crashes to build-fuzz/.
  if (cd "$build" && "./fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
        -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" \
        "${inputs[@]}") >"$log" 2>&1; then
    verdict="no finding"
  else
    verdict="FINDING (see $log and $build/crash-*)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz_$t: $runs executions in ${seconds}s, $verdict"
done
exit $status
