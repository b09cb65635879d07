#!/usr/bin/env bash
# Host-side check of the extents behind `qemu:dirty-bitmap:cbt` (engine/snapshot_cbt.cpp): builds
# tests/kmod/host/snapshot_cbt_extents_check.cpp against the engine sources and runs it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${HYDRATE_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g++ -std=c++20 -O1 -Wall -Wextra -Werror -I"$src" \
  "$here/host/snapshot_cbt_extents_check.cpp" "$src/engine/snapshot_cbt.cpp" "$src/engine/log.cpp" \
  -o "$tmp/check"
"$tmp/check"
