#!/usr/bin/env bash
# Installs what gradlens needs from Debian's packages, only where it is missing.
#   tools/install_deps.sh          build + test dependencies (chromium: the report's browser test)
#   tools/install_deps.sh --bench  also python3-torch, the yardstick of bench/compare.py
set -euo pipefail

packages=(cmake ninja-build g++ clang pkg-config libeigen3-dev libgtest-dev libbenchmark-dev
          nlohmann-json3-dev libcli11-dev libpng-dev libssl-dev zlib1g-dev libonnx-dev libonnx-testdata
          libprotobuf-dev npm curl chromium)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
  # npm may come from a Node.js install outside Debian's packages: any npm on PATH will do.
  if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "all dependencies present"
fi
