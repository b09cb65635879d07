# Mounted ext4 under a write workload: snapshot (the file system is frozen meanwhile), keep
# writing, then the snapshot passes `e2fsck -fn` and its files match their pre-snapshot sums.
dev=/dev/vdb
/usr/bin/mke2fs -t ext4 -F $dev >/tmp/mkfs.log 2>&1 || fail "mke2fs: $(tail -n 2 /tmp/mkfs.log)"
mkdir -p /mnt/origin /mnt/snap
mount -t ext4 $dev /mnt/origin || fail "mount $dev"
i=0
while [ $i -lt 24 ]; do
  dd if=/dev/urandom of=/mnt/origin/f_$i.dat bs=4096 count=$((RANDOM % 64 + 1)) 2>/dev/null
  i=$((i + 1))
done
mkdir /mnt/origin/dir && cp /mnt/origin/f_1*.dat /mnt/origin/dir/
sync
(cd /mnt/origin && md5sum f_*.dat dir/*) >/tmp/pre.md5

# The workload: new files, appends, rewrites and deletes, before, during and after the snapshot.
(
  n=0
  while [ ! -e /tmp/stop ]; do
    dd if=/dev/urandom of=/mnt/origin/w_$((n % 16)).dat bs=4096 count=$((RANDOM % 32 + 1)) 2>/dev/null
    dd if=/dev/urandom bs=1024 count=3 2>/dev/null >>/mnt/origin/log.dat
    [ $((n % 7)) = 0 ] && rm -f /mnt/origin/w_$(((n + 5) % 16)).dat
    [ $((n % 5)) = 0 ] && sync
    n=$((n + 1))
  done
  echo $n >/tmp/workload.count
) &
workload=$!
sleep 2

snap_create $dev --store-file /tmp/ext4.cow --store-size 64M
log "snapshot $SNAP_DEV taken under load"

# After the snapshot: overwrite, truncate and delete the checked files on the origin.
i=0
while [ $i -lt 24 ]; do
  case $((i % 3)) in
    0) dd if=/dev/urandom of=/mnt/origin/f_$i.dat bs=4096 count=8 conv=notrunc 2>/dev/null ;;
    1) : >/mnt/origin/f_$i.dat ;;
    2) rm -f /mnt/origin/f_$i.dat ;;
  esac
  i=$((i + 1))
done
rm -rf /mnt/origin/dir
sync
sleep 1

/usr/bin/e2fsck -fn "$SNAP_DEV" >/tmp/fsck.log 2>&1 || fail "e2fsck -fn on the snapshot: $(tail -n 3 /tmp/fsck.log | tr '\n' ' ')"
mount -t ext4 -o ro "$SNAP_DEV" /mnt/snap || fail "mounting $SNAP_DEV read-only"
(cd /mnt/snap && md5sum -c /tmp/pre.md5 >/tmp/check.log 2>&1) ||
  fail "snapshot files differ: $(grep -v ': OK' /tmp/check.log | head -n 3 | tr '\n' ' ')"
touch /tmp/stop
wait $workload
umount /mnt/snap || fail "umount snapshot"
log "workload made $(cat /tmp/workload.count) rounds"
sync
umount /mnt/origin || fail "umount origin"
/usr/bin/e2fsck -fn $dev >/tmp/fsck2.log 2>&1 || fail "origin fs damaged: $(tail -n 3 /tmp/fsck2.log | tr '\n' ' ')"
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy"
true
