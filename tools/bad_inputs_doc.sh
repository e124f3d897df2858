#!/usr/bin/env bash
# Writes docs/bad-inputs.md from the test that gives the program every bad input we know of
# (tests/tools/test_bad_inputs.cpp); with --check, compares instead and fails when the page is out
# of date (the ctest bad_inputs_doc).
#   bash tools/bad_inputs_doc.sh [--check] [BUILD_DIR]   (BUILD_DIR defaults to build)
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
build=${1:-build}
page=$(mktemp)
trap 'rm -f "$page"' EXIT
if ! GRADLENS_BAD_INPUTS_DOC=$page "$build/tests/gradlens_tests" \
  --gtest_filter='BadInputs.*' >"$page.log" 2>&1; then
  cat "$page.log" >&2
  rm -f "$page.log"
  echo "bad_inputs_doc: the test failed" >&2
  exit 1
fi
rm -f "$page.log"
if [[ ! -s $page ]]; then
  echo "bad_inputs_doc: skipped (the test needs ../shared/reference and ../shared/cifar10)"
  exit 0
fi
if ((check)); then
  if ! diff -u docs/bad-inputs.md "$page"; then
    echo "bad_inputs_doc: docs/bad-inputs.md is out of date: run bash tools/bad_inputs_doc.sh" >&2
    exit 1
  fi
  echo "bad_inputs_doc: docs/bad-inputs.md is up to date"
else
  mkdir -p docs
  cp "$page" docs/bad-inputs.md
  echo "wrote docs/bad-inputs.md"
fi
