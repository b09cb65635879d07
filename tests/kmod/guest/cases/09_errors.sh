# Clear refusals with the module loaded: a COW store file on the snapshotted device (a later
# goal), the origin as its own store, a second snapshot, tracking twice, unknown ids.
dev=/dev/vdb
/usr/bin/mke2fs -t ext4 -F $dev >/dev/null 2>&1 || fail "mke2fs"
mkdir -p /mnt/origin
mount -t ext4 $dev /mnt/origin || fail "mount"

refused() { # refused PATTERN COMMAND...: COMMAND fails (exit 1) with PATTERN on stderr
  pattern=$1
  shift
  out=$("$@" 2>&1)
  rc=$?
  [ $rc = 1 ] || fail "'$*' exited $rc (want 1): $out"
  echo "$out" | grep -q "$pattern" || fail "'$*' said: $out (want: $pattern)"
}

refused "lives on the device being snapshotted" \
  hydrate snap create $dev --store-file /mnt/origin/cow.img --store-size 8M
[ -e /dev/loop0 ] && losetup /dev/loop0 2>/dev/null | grep -q cow.img && fail "a loop device was left attached"
refused "overlaps it" hydrate snap create $dev --store $dev
refused "not a block device" hydrate snap create /mnt/origin
refused "no such device\|No such file" hydrate snap create /dev/nonexistent
refused "no tracked device with id 7" hydrate snap cbt 7

snap_create $dev --store-file /tmp/e.cow --store-size 16M
refused "device busy" hydrate snap create $dev --store-file /tmp/e2.cow --store-size 16M
refused "device busy" hydrate snap create /dev/loop0
hydrate snap destroy "$SNAP_ID" --keep-tracking >/dev/null || fail "destroy --keep-tracking"
[ -e "$SNAP_DEV" ] && fail "$SNAP_DEV survived destroy --keep-tracking"
refused "already tracked" hydrate snap create $dev
refused "no such snapshot" hydrate snap destroy "$SNAP_ID" --keep-tracking
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy the tracker"
refused "no such tracked device" hydrate snap destroy "$SNAP_ID"
umount /mnt/origin
true
