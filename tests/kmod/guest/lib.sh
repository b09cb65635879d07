# Helpers for the guest: results, checksums, JSON fields from `hydrate snap`.

case_name() {
  n=${1##*/}
  n=${n%.sh}
  echo "${n#[0-9][0-9]_}"
}

# Appends a line to the results and copies them to /dev/vda at once, so a crash later in the
# run still leaves every earlier result readable by the host.
record() {
  echo "$*"
  echo "$*" >>/tmp/results
  dd if=/tmp/results of=/dev/vda conv=notrunc,fsync 2>/dev/null
}

fail() {
  echo "$*" >/tmp/case.msg
  echo "case failed: $*" >&2
  exit 1
}

skip() {
  echo "$*" >/tmp/case.msg
  exit 77
}

log() { echo "  [$(cut -d' ' -f1 /proc/uptime)] $*"; }

# Puts the guest back in a known state between cases: nothing mounted, nothing tracked.
cleanup_between_cases() {
  for m in /mnt/*; do umount "$m" 2>/dev/null; done
  nbd-client -d /dev/nbd0 >/dev/null 2>&1
  if [ -e /dev/hydrate-snap-ctl ]; then
    for id in $(hydrate snap list 2>/dev/null | sed -n 's/^ *"id": \([0-9]*\),*/\1/p'); do
      hydrate snap destroy "$id" --force >/dev/null 2>&1
    done
  fi
  rm -f /tmp/*.cow /tmp/stop* /tmp/case.msg
}

run_case() {
  name=$(case_name "$1")
  warnings_before=$(dmesg | grep -cE 'WARNING:|BUG:|INFO: task .* blocked')
  log "case $name"
  start=$(cut -d. -f1 /proc/uptime)
  timeout "${HSNAP_CASE_TIMEOUT:-180}" sh -c ". /lib.sh; . $1"
  rc=$?
  took=$(($(cut -d. -f1 /proc/uptime) - start))
  msg=$(cat /tmp/case.msg 2>/dev/null)
  warnings_after=$(dmesg | grep -cE 'WARNING:|BUG:|INFO: task .* blocked')
  if [ "$rc" = 0 ] && [ "$warnings_after" != "$warnings_before" ]; then
    rc=1
    msg="kernel warning: $(dmesg | grep -E 'WARNING:|BUG:|INFO: task' | tail -n 1)"
  fi
  case $rc in
    0) record "RESULT $name PASS (${took}s) $msg" ;;
    77) record "RESULT $name SKIP $msg" ;;
    124 | 143) record "RESULT $name FAIL timed out after ${took}s $msg" ;;
    *) record "RESULT $name FAIL $msg" ;;
  esac
  cleanup_between_cases
}

# Checksum of a whole device, read around the page cache.
md5dev() {
  dd if="$1" bs=1M iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}

md5file() {
  md5sum <"$1" | cut -d' ' -f1
}

# json_num KEY JSON: the first numeric value of "KEY" in pretty-printed JSON.
json_num() {
  echo "$2" | sed -n "s/^ *\"$1\": \([0-9][0-9]*\),*\$/\1/p" | head -n 1
}

# json_str KEY JSON: the first string value of "KEY".
json_str() {
  echo "$2" | sed -n "s/^ *\"$1\": \"\(.*\)\",*\$/\1/p" | head -n 1
}

# snap_create ARGS...: runs `hydrate snap create`, fails the case on error, sets SNAP_ID and
# SNAP_DEV.
snap_create() {
  out=$(hydrate snap create "$@" 2>&1) || fail "hydrate snap create $*: $out"
  SNAP_ID=$(json_num id "$out")
  SNAP_DEV=/dev/hydrate-snap$SNAP_ID
  [ -n "$SNAP_ID" ] || fail "no id in: $out"
}

# rand_write DEV EXPECT BS SEEK COUNT: writes the same random data to DEV (O_DIRECT) and to the
# file EXPECT that models what DEV must contain.
rand_write() {
  dd if=/dev/urandom of=/tmp/blk bs="$3" count="$5" 2>/dev/null
  dd if=/tmp/blk of="$1" bs="$3" seek="$4" count="$5" conv=notrunc oflag=direct 2>/dev/null ||
    fail "write of $5 x $3 bytes at block $4 to $1 failed"
  dd if=/tmp/blk of="$2" bs="$3" seek="$4" count="$5" conv=notrunc 2>/dev/null
}
