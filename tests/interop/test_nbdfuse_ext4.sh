#!/usr/bin/env bash
# A real filesystem over the export: nbdfuse exposes it as a file, the kernel loop-mounts that
# file as ext4, files are written and synced, then e2fsck and checksums verify the backing image.
. "$(dirname "$0")/../lib/interop.sh"
interop_init

SIZE_MIB=128

ext4_over_nbdfuse() {
  [ -c /dev/fuse ] || skip "/dev/fuse is missing"
  command -v nbdfuse >/dev/null || skip "nbdfuse is not installed"
  [ "$(id -u)" -eq 0 ] || skip "mount -o loop needs root"
  losetup -f >/dev/null 2>&1 || skip "no free loop device (losetup -f failed)"

  truncate -s "${SIZE_MIB}M" "$T/disk.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$T/disk.img"
  server_start disk "$T/disk.img"

  mkdir -p "$T/fuse" "$T/mnt"
  nbdfuse "$T/fuse/disk" "$URI" >"$T/nbdfuse.log" 2>&1 &
  _pids+=($!)
  at_exit "fusermount3 -u '$T/fuse'"
  local deadline=$((SECONDS + 30))
  until [ -f "$T/fuse/disk" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "nbdfuse did not expose $T/fuse/disk: $(cat "$T/nbdfuse.log")"
    sleep 0.1
  done
  assert_eq "$(stat -c %s "$T/fuse/disk")" "$((SIZE_MIB << 20))" "size of the FUSE file"

  mount -o loop "$T/fuse/disk" "$T/mnt" || fail "mount -o loop of the nbdfuse file failed"
  at_exit "umount '$T/mnt'"
  mkdir "$T/mnt/dir"
  local i
  for i in 1 2 3 4 5 6 7 8; do
    head -c $((i * 1536 * 1024 + i * 17)) /dev/urandom >"$T/mnt/dir/file$i"
  done
  (cd "$T/mnt" && find dir -type f | sort | xargs sha256sum) >"$T/written.sha256"
  sync -f "$T/mnt"
  umount "$T/mnt" || fail "umount failed"
  fusermount3 -u "$T/fuse" || fail "fusermount3 -u failed"

  # The filesystem as the server stored it: through the server, then the backing file itself.
  client nbdcopy "$URI" "$T/copy.img"
  e2fsck -fn "$T/copy.img" >"$T/fsck.out" 2>&1 || fail "e2fsck -fn of the export: $(cat "$T/fsck.out")"
  e2fsck -fn "$T/disk.img" >"$T/fsck.out" 2>&1 || fail "e2fsck -fn of the backing file: $(cat "$T/fsck.out")"
  mount -o loop,ro "$T/disk.img" "$T/mnt" || fail "mounting the backing file failed"
  (cd "$T/mnt" && sha256sum -c --quiet "$T/written.sha256") || fail "file checksums differ in the backing file"
  assert_eq "$(find "$T/mnt/dir" -type f | wc -l)" 8 "number of files in the backing file"
  umount "$T/mnt"
}

run_case ext4_over_nbdfuse ext4_over_nbdfuse
interop_finish
