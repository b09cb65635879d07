#!/usr/bin/env bash
# ctest entry (label kmod): the module's source is checkpatch-clean (--strict) and builds the way
# users install it, through DKMS, against Debian's 6.1 headers. No qemu: this is about the
# source and its packaging, not its behaviour.
#
# checkpatch.pl is not packaged on its own in Debian 12; it ships inside linux-source-6.1
# (scripts/install-deps installs it). The three files it needs are extracted once into
# $HYDRATE_BUILD_DIR/checkpatch (or a temporary directory).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
kmod=$src/kmod
. "$here/lib/guest_image.sh"

fail=0
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
problem() { echo "FAIL: $*" >&2; fail=1; }

# --- checkpatch -----------------------------------------------------------------------------
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1 || true)
if [[ -z $tarball ]]; then
  echo "FAIL: no /usr/src/linux-source-6.1.tar.*: install linux-source-6.1 (scripts/install-deps does)" >&2
  exit 1
fi
tools=${HYDRATE_BUILD_DIR:-}/checkpatch
if [[ -z ${HYDRATE_BUILD_DIR:-} ]]; then
  tools=$(mktemp -d)
  scratch+=("$tools")
fi
stamp=$tools/$(basename "$tarball").extracted
if [[ ! -e $stamp || $stamp -ot $tarball ]]; then
  rm -rf "$tools" && mkdir -p "$tools"
  tar -xf "$tarball" -C "$tools" --strip-components=1 --wildcards \
    '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
  touch "$stamp"
fi

sources=()
while IFS= read -r f; do sources+=("$f"); done < <(cd "$kmod" && find . -name '*.[ch]' -not -name '*.mod.c' | sed 's|^\./||' | sort)
((${#sources[@]} >= 5)) || problem "found only ${#sources[@]} C files under $kmod"
# Without --terse a clean file says so in one line; anything else is a finding.
report=$(cd "$kmod" && perl "$tools/scripts/checkpatch.pl" --strict --no-tree --show-types \
  -f "${sources[@]}" 2>&1 || true)
clean=$(grep -c 'has no obvious style problems' <<<"$report" || true)
findings=$(grep -E '^(ERROR|WARNING|CHECK):' -A3 <<<"$report" || true)
if [[ -n $findings ]]; then
  problem "checkpatch --strict reports:"
  echo "$findings" >&2
elif ((clean != ${#sources[@]})); then
  problem "checkpatch found $clean of ${#sources[@]} files clean:"
  echo "$report" >&2
else
  echo "checkpatch --strict: ${#sources[@]} files clean"
fi

# --- DKMS -----------------------------------------------------------------------------------
hsnap_find_kver
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"/\1/p' "$kmod/dkms.conf")
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$kmod/dkms.conf")
module_version=$(awk '/#define HSNAP_VERSION_(MAJOR|MINOR|PATCH)/ {v = v (v == "" ? "" : ".") $3} END {print v}' "$kmod/hsnap.h")
[[ $version == "$module_version" ]] ||
  problem "dkms.conf says version '$version' but kmod/hsnap.h says '$module_version'"
grep -q "^MODULE_VERSION\|MODULE_VERSION(" "$kmod"/*.c || problem "no MODULE_VERSION in kmod/*.c"

# A private source and DKMS tree: nothing is installed, /var/lib/dkms stays as it was.
dk=$(mktemp -d)
scratch+=("$dk")
mkdir -p "$dk/src/$name-$version" "$dk/tree"
(cd "$kmod" && find . -name '*.[ch]' -o -name Kbuild -o -name Makefile -o -name dkms.conf |
  cpio -pdm --quiet "$dk/src/$name-$version")
if dkms build "$name/$version" -k "$KVER" --sourcetree "$dk/src" --dkmstree "$dk/tree" >"$dk/log" 2>&1; then
  ko=$(find "$dk/tree/$name/$version/$KVER" -name 'hydrate_snap.ko*' | head -n 1)
  if [[ -z $ko ]]; then
    problem "dkms build succeeded but left no hydrate_snap.ko"
    cat "$dk/log" >&2
  else
    vermagic=$(modinfo -F vermagic "$ko")
    [[ $vermagic == "$KVER "* ]] || problem "DKMS module built for '$vermagic', not $KVER"
    echo "dkms build $name/$version for $KVER: $(basename "$ko") ($vermagic)"
  fi
else
  problem "dkms build $name/$version -k $KVER failed:"
  cat "$dk/log" >&2
fi

exit "$fail"
