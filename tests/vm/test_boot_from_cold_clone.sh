#!/usr/bin/env bash
# Boots Debian's own 6.1 kernel under qemu (TCG) with its root filesystem on a cold hydrate clone
# of a delayed nbdkit source, then checks that the clone completes and that its destination is
# the source plus exactly what the guest wrote.
#
#   source.img (64 MiB) = ext4 (48 MiB: busybox, /init, random files and their sha256 manifest)
#                         + 16 MiB of random bytes past the filesystem's end
#   nbdkit -r --filter=delay file source.img  ->  hydrate serve (clone export "vm", background
#   hydration off)  ->  qemu -drive file=nbd+unix:///vm  ->  /dev/vda in the guest
#
# The guest's initramfs loads virtio_blk and ext4, mounts /dev/vda read-only and switch_roots to
# its /init (tests/vm/guest/rootfs/init), which checks every file's sha256, writes a pattern raw
# to a range past the filesystem that starts and ends inside a region (so the clone merges it
# with fetched source data), reads it back and powers off. The host then checks: the guest said
# PASS, its reads were on-demand fetches (nothing was hydrated before it booted, the clone was
# not complete after it), the clone completes once hydration is resumed, `hydrate serve` stops
# cleanly on SIGTERM, the metadata checks out, and the destination equals the source outside
# the written range and the pattern inside it (cmp, byte for byte).
#
# Environment: HYDRATE_BIN (default $HYDRATE_BUILD_DIR/cli/hydrate, else build/cli/hydrate),
# HSNAP_KEEP=1 keeps the work directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../kmod/lib/guest_image.sh
. "$src/tests/kmod/lib/guest_image.sh"

name=vm.test_boot_from_cold_clone
start=$SECONDS
say() { echo "$name: [$((SECONDS - start)) s] $*"; }
fail() {
  echo "$name: FAIL: $*" >&2
  local log
  for log in serve.log source.log; do
    [[ -s $work/$log ]] || continue
    echo "---- $log (last 30 lines) ----" >&2
    tail -n 30 "$work/$log" >&2
  done
  exit 1
}

# Geometry (bytes unless said otherwise). The written range starts 12 KiB into a 64 KiB region
# and ends 20 KiB into one, so both ends are partial-region writes.
disk_size=$((64 << 20))
fs_size=$((48 << 20))
region_size=$((64 << 10))
write_block=$(((56 << 20) / 4096 + 3))  # in 4 KiB blocks
write_blocks=258
write_offset=$((write_block * 4096))
write_length=$((write_blocks * 4096))
write_end=$((write_offset + write_length))
source_delay=5ms  # per read and per block-status request

hydrate_bin=${HYDRATE_BIN:-${HYDRATE_BUILD_DIR:-$src/build}/cli/hydrate}
work=$(mktemp -d "${TMPDIR:-/tmp}/vm-boot.XXXXXX")
nbdkit_pid='' serve_pid=''
cleanup() {
  local pid
  for pid in $serve_pid $nbdkit_pid; do
    kill "$pid" 2>/dev/null || continue
    timeout 15 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
  done
  if [[ ${HSNAP_KEEP:-0} == 1 ]]; then echo "$name: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Everything this test needs; a missing piece is a failure, never a skip.
[[ -x $hydrate_bin ]] || fail "no hydrate binary at $hydrate_bin (build it, or set HYDRATE_BIN)"
for tool in qemu-system-x86_64 nbdkit nbdinfo mkfs.ext4 busybox cpio gzip modprobe cmp sha256sum \
            timeout /usr/bin/python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (see scripts/debian-packages.txt)"
done
hsnap_find_kver --no-headers || fail "no Debian 6.1 kernel to boot"

# status_field FIELD...: the clone's status fields, one per line, from the control socket.
status_field() {
  "$hydrate_bin" status vm --json --control "$work/control.sock" |
    /usr/bin/python3 -c '
import json, sys
e = json.load(sys.stdin)["exports"][0]
for f in sys.argv[1:]:
    print(e[f])' "$@"
}

# wait_nbd URI PID WHAT: until a full NBD handshake on URI succeeds (20 s at most), while PID lives.
wait_nbd() {
  local uri=$1 pid=$2 what=$3 deadline=$((SECONDS + 20))
  until nbdinfo --size "$uri" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "$what exited before it answered on $uri"
    ((SECONDS < deadline)) || fail "$what did not answer on $uri within 20 s"
    sleep 0.05
  done
}

# --- the source: an ext4 root filesystem with a sha256 manifest, then random bytes -----------
hsnap_make_guest_root "$work/rootfs" "$here/guest/rootfs" || fail "could not assemble the root filesystem"
mkdir -p "$work/rootfs/data"
i=0
for size in 1048576 2097152 3145728 524288 65536 7001 1000003 131073 4096 1; do
  head -c "$size" /dev/urandom >"$work/rootfs/data/file$i.bin"
  i=$((i + 1))
done
head -c "$write_length" /dev/urandom >"$work/rootfs/data/pattern.bin"
(cd "$work/rootfs/data" && sha256sum -- *.bin >SHA256SUMS)
printf 'write_block=%d\nwrite_blocks=%d\n' "$write_block" "$write_blocks" >"$work/rootfs/etc/boottest.conf"
mkfs.ext4 -q -F -L boottest -E lazy_itable_init=0,lazy_journal_init=0 -d "$work/rootfs" \
  "$work/source.img" "$((fs_size >> 10))k" >"$work/mkfs.log" 2>&1 ||
  fail "mkfs.ext4 -d failed: $(cat "$work/mkfs.log")"
[[ $(stat -c %s "$work/source.img") == "$fs_size" ]] || fail "mkfs.ext4 made an image of the wrong size"
head -c "$((disk_size - fs_size))" /dev/urandom >>"$work/source.img"
cp "$work/rootfs/data/pattern.bin" "$work/pattern.bin"

# --- the guest's initramfs: virtio and ext4 modules, and a stage-1 /init -----------------------
hsnap_make_guest_root "$work/initramfs" "$here/guest/initramfs" virtio_pci virtio_blk ext4 ||
  fail "could not assemble the initramfs"
hsnap_pack_initramfs "$work/initramfs" "$work/initramfs.cpio.gz" || fail "could not pack the initramfs"
say "source $((disk_size >> 20)) MiB (ext4 $((fs_size >> 20)) MiB, $i files), initramfs $(du -h "$work/initramfs.cpio.gz" | cut -f1), kernel $KVER"

# --- nbdkit (read-only, delayed) and hydrate serve with one cold clone export ------------------
nbdkit -f --exit-with-parent -r -U "$work/source.sock" --filter=delay file "$work/source.img" \
  delay-read="$source_delay" delay-extents="$source_delay" >"$work/source.log" 2>&1 &
nbdkit_pid=$!
wait_nbd "nbd+unix:///?socket=$work/source.sock" "$nbdkit_pid" nbdkit

cat >"$work/hydrate.yaml" <<EOF
listen: [ "unix:$work/nbd.sock" ]
control: $work/control.sock
exports:
  - name: vm
    clone:
      source: "nbd+unix:///?socket=$work/source.sock"
      destination: $work/clone.img
      metadata: $work/clone.meta
      region_size: $((region_size >> 10))KiB
      fetch_window: 128KiB
      commit_interval: 200ms
      source_timeout: 10s
      hydration: { enabled: false }   # until the guest is done: its reads are on-demand fetches
EOF
"$hydrate_bin" serve -c "$work/hydrate.yaml" >"$work/serve.log" 2>&1 &
serve_pid=$!
clone_uri="nbd+unix:///vm?socket=$work/nbd.sock"
wait_nbd "$clone_uri" "$serve_pid" "hydrate serve"

status=$(status_field state fetched_bytes size) || fail "hydrate status failed before the boot"
{ read -r state; read -r fetched; read -r size; } <<<"$status"
[[ $state == paused ]] || fail "the clone is '$state' before the boot, expected 'paused' (hydration off)"
[[ $fetched == 0 ]] || fail "the clone fetched $fetched bytes before the guest booted: not cold"
[[ $size == "$disk_size" ]] || fail "the clone export is $size bytes, the source $disk_size"
say "cold clone served (paused, nothing fetched); booting the guest from it (qemu, TCG)"

# --- boot -------------------------------------------------------------------------------------
set +e
HSNAP_DISK_CACHE=none hsnap_boot_qemu "$work/serial.log" 75 "" "$work/initramfs.cpio.gz" "$clone_uri"
qemu_rc=$?
set -e
# grep -o: the console's first line after the firmware starts with its escape sequences.
result=$(grep -o -m1 'BOOTTEST-RESULT .*' "$work/serial.log" || true)
if [[ $result != "BOOTTEST-RESULT PASS "* ]]; then
  echo "---- guest serial log (last 60 lines) ----" >&2
  tail -n 60 "$work/serial.log" >&2
  hsnap_print_kernel_state "$work/serial.log" >&2 || true
  fail "the guest did not pass (qemu exit $qemu_rc): ${result:-no BOOTTEST-RESULT line (crashed, hung or timed out)}"
fi
((qemu_rc == 0)) || fail "qemu exited $qemu_rc after the guest passed"
grep -o 'BOOTTEST.*' "$work/serial.log" | sed "s/^/$name: guest: /"

status=$(status_field state on_demand_fetches hydrated_bytes hydration_errors) ||
  fail "hydrate status failed after the boot"
{ read -r state; read -r on_demand; read -r hydrated; read -r errors; } <<<"$status"
[[ $state == paused ]] || fail "the clone is '$state' after the boot, expected 'paused'"
((on_demand > 0)) || fail "the guest booted without a single on-demand fetch: it did not read through the clone"
((hydrated < disk_size)) || fail "the clone was fully hydrated by the guest's reads alone; the completion below proves nothing"
((errors == 0)) || fail "$errors hydration errors during the boot"
say "guest passed; $on_demand on-demand fetches, $((hydrated >> 10)) KiB of $((disk_size >> 10)) KiB hydrated; resuming hydration"

# --- completion, clean stop -------------------------------------------------------------------
"$hydrate_bin" ctl vm resume --control "$work/control.sock" >/dev/null || fail "hydrate ctl vm resume failed"
timeout 60 "$hydrate_bin" status vm --wait --interval 0.2 --control "$work/control.sock" >/dev/null ||
  fail "the clone did not complete within 60 s of resuming: $(status_field state percent reason 2>&1 | tr '\n' ' ')"
say "clone complete; stopping hydrate serve (SIGTERM)"
kill -TERM "$serve_pid"
timeout 30 tail --pid="$serve_pid" -f /dev/null || fail "hydrate serve did not exit within 30 s of SIGTERM"
set +e
wait "$serve_pid"
serve_rc=$?
set -e
serve_pid=''
((serve_rc == 0)) || fail "hydrate serve exited $serve_rc on SIGTERM"
kill "$nbdkit_pid"
wait "$nbdkit_pid" || true
nbdkit_pid=''

# --- the destination: the source plus exactly the guest's write -------------------------------
"$hydrate_bin" meta check "$work/clone.meta" --source-size "$disk_size" \
  --region-size "$region_size" >"$work/meta.out" 2>&1 || fail "hydrate meta check: $(cat "$work/meta.out")"
dest_size=$(stat -c %s "$work/clone.img")
((dest_size == disk_size)) || fail "the destination is $dest_size bytes, the source $disk_size"
cmp -n "$write_offset" "$work/source.img" "$work/clone.img" >&2 ||
  fail "the destination differs from the source before the guest's write (offset < $write_offset)"
cmp -i "$write_end" "$work/source.img" "$work/clone.img" >&2 ||
  fail "the destination differs from the source after the guest's write (offset >= $write_end)"
cmp -i "$write_offset:0" -n "$write_length" "$work/clone.img" "$work/pattern.bin" >&2 ||
  fail "the destination's bytes $write_offset..$write_end are not the guest's pattern"
say "PASS: destination = source + the guest's $write_length-byte write at $write_offset; $(cat "$work/meta.out")"
