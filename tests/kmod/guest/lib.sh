# Helpers for the guest: results, checksums, JSON fields from `hydrate snap`.
# busybox sh runs its own applets before PATH, so real tools are called by full path.
. /watchdog.sh

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

# Snapshot window checks: window_sums SRC [dd flags] records the checksums of the 16 windows of
# 4 MiB at the start of SRC (what the snapshot must read); start_window_reader STRIDE reads window
# n*STRIDE%16 of the snapshot over and over in the background, so its reads and a case's writes
# overlap in time and place many times; stop_window_reader stops it and fails the case if any
# read differed.
window_sums() {
  w=0
  while [ $w -lt 16 ]; do
    dd if="$1" bs=1M skip=$((w * 4)) count=4 ${2:-} 2>/dev/null | md5sum | cut -d' ' -f1 >/tmp/window.$w
    w=$((w + 1))
  done
}

start_window_reader() {
  rm -f /tmp/stop.reader /tmp/reader.bad /tmp/reader.count
  (
    n=0
    while [ ! -e /tmp/stop.reader ]; do
      w=$((n * $1 % 16))
      sum=$(dd if="$SNAP_DEV" bs=1M skip=$((w * 4)) count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
      [ "$sum" = "$(cat /tmp/window.$w)" ] || echo "read $n of window $w: $sum" >>/tmp/reader.bad
      n=$((n + 1))
    done
    echo $n >/tmp/reader.count
  ) &
  window_reader=$!
}

stop_window_reader() {
  touch /tmp/stop.reader
  wait $window_reader
  [ -e /tmp/reader.bad ] && fail "snapshot changed while the origin was written: $(head -n 3 /tmp/reader.bad)"
  log "snapshot read $(cat /tmp/reader.count) windows of 4 MiB during the writes"
}

# Puts the guest back in a known state between cases: nothing mounted, nothing tracked.
cleanup_between_cases() {
  for m in /mnt/*; do umount "$m" 2>/dev/null; done
  /usr/bin/nbd-client -d /dev/nbd0 >/dev/null 2>&1
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
  case $rc in 124 | 143) dump_kernel_state "case $name timed out" ;; esac
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
  # busybox dd drops O_DIRECT for buffers it cannot align (bs=512); fsync covers that case.
  dd if=/tmp/blk of="$1" bs="$3" seek="$4" count="$5" conv=notrunc,fsync oflag=direct 2>/dev/null ||
    fail "write of $5 x $3 bytes at block $4 to $1 failed"
  dd if=/tmp/blk of="$2" bs="$3" seek="$4" count="$5" conv=notrunc 2>/dev/null
}

# cbt_chunks JSON: one chunk number per line for the extents of `hydrate snap cbt` output.
cbt_chunks() {
  echo "$1" | tr -d ' \n' | sed -n 's/.*"extents":\[\(.*\)\]\(,"\|}\).*/\1/p' |
    awk -v chunk="${2:-4096}" '{
      gsub(/\],\[/, "\n"); gsub(/[][]/, "");
      n = split($0, lines, "\n");
      for (i = 1; i <= n; i++) {
        if (split(lines[i], f, ",") != 2) continue;
        for (c = int(f[1] / chunk); c <= int((f[1] + f[2] - 1) / chunk); c++) print c;
      }
    }' | sort -n
}

# written_chunks FILE: chunks touched by the "offset length" byte ranges in FILE.
written_chunks() {
  awk -v chunk="${2:-4096}" '{ for (c = int($1 / chunk); c <= int(($1 + $2 - 1) / chunk); c++) print c }' "$1" |
    sort -n | uniq
}

# random_ranges SEED COUNT MAX_BYTES: "offset length" lines, 512-byte aligned, 512 B .. 48 KiB.
random_ranges() {
  awk -v seed="$1" -v n="$2" -v max="$3" 'BEGIN {
    srand(seed);
    for (i = 0; i < n; i++) {
      len = (int(rand() * 96) + 1) * 512;
      off = int(rand() * ((max - len) / 512)) * 512;
      print off, len;
    }
  }'
}

# write_ranges DEV FILE: writes random data to each "offset length" range of FILE.
write_ranges() {
  while read -r off len; do
    dd if=/dev/urandom of="$1" bs=512 seek=$((off / 512)) count=$((len / 512)) conv=notrunc,fsync oflag=direct 2>/dev/null ||
      fail "write of $len bytes at $off to $1 failed"
  done <"$2"
}
