# End to end: `hydrate serve` exports the snapshot; a second `hydrate serve` clones it over NBD
# into /dev/vdd; nbd-client attaches the clone as /dev/nbd0; it equals the snapshot, mounts,
# holds the files, takes a write, flushes, disconnects, and keeps the write on reconnect. Then
# the clone completes, both servers stop, and /dev/vdd on its own is the snapshot's file system
# plus the write: the destination is a standalone copy.
hydrate serve --help >/dev/null 2>&1 || skip "hydrate serve is not in this build"
dev=/dev/vdb
/usr/bin/mke2fs -t ext4 -F $dev >/dev/null 2>&1 || fail "mke2fs"
mkdir -p /mnt/origin /mnt/clone
mount -t ext4 $dev /mnt/origin || fail "mount origin"
i=0
while [ $i -lt 12 ]; do
  dd if=/dev/urandom of=/mnt/origin/f_$i.dat bs=4096 count=$((RANDOM % 48 + 1)) 2>/dev/null
  i=$((i + 1))
done
sync
(cd /mnt/origin && md5sum f_*.dat) >/tmp/pre.md5
snap_create $dev --store-file /tmp/e2e.cow --store-size 64M
dd if=/dev/urandom of=/mnt/origin/f_0.dat bs=4096 count=4 conv=notrunc,fsync 2>/dev/null
snap_sum=$(md5dev "$SNAP_DEV")

hydrate serve --listen tcp://127.0.0.1:10809 --export "snap=$SNAP_DEV:ro" --pidfile /tmp/s1.pid \
  >/tmp/s1.log 2>&1 &
n=0
while [ ! -s /tmp/s1.pid ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
[ -s /tmp/s1.pid ] || fail "hydrate serve of the snapshot did not start: $(tail -n 2 /tmp/s1.log)"

cat >/tmp/clone.yaml <<YAML
listen: ["tcp://127.0.0.1:10810"]
control: /tmp/clone.sock
exports:
  - name: c
    clone:
      source: "nbd://127.0.0.1:10809/snap"
      destination: /dev/vdd
      metadata: /tmp/c.meta
YAML
: >/tmp/c.meta
hydrate serve -c /tmp/clone.yaml --pidfile /tmp/s2.pid >/tmp/s2.log 2>&1 &
s2=$!
n=0
while [ ! -s /tmp/s2.pid ] && [ $n -lt 300 ] && kill -0 $s2 2>/dev/null; do sleep 0.1; n=$((n + 1)); done
if [ ! -s /tmp/s2.pid ]; then
  kill "$(cat /tmp/s1.pid)" 2>/dev/null
  fail "clone server did not start: $(tail -n 2 /tmp/s2.log)"
fi

stop_servers() {
  kill "$(cat /tmp/s2.pid)" 2>/dev/null
  kill "$(cat /tmp/s1.pid)" 2>/dev/null
}
/usr/bin/nbd-client 127.0.0.1 10810 /dev/nbd0 -N c >/tmp/nbd.log 2>&1 || { stop_servers; fail "nbd-client: $(cat /tmp/nbd.log)"; }
[ "$(md5dev /dev/nbd0)" = "$snap_sum" ] || { stop_servers; fail "the clone differs from the snapshot"; }
mount -t ext4 /dev/nbd0 /mnt/clone || { stop_servers; fail "mounting the clone"; }
(cd /mnt/clone && md5sum -c /tmp/pre.md5 >/tmp/check.log 2>&1) || { stop_servers; fail "clone files differ"; }
dd if=/dev/urandom of=/mnt/clone/new.dat bs=4096 count=16 2>/dev/null
new_sum=$(md5file /mnt/clone/new.dat)
sync
umount /mnt/clone || { stop_servers; fail "umount clone"; }
/usr/bin/nbd-client -d /dev/nbd0 >/dev/null 2>&1
/usr/bin/nbd-client 127.0.0.1 10810 /dev/nbd0 -N c >/tmp/nbd.log 2>&1 || { stop_servers; fail "reconnect: $(cat /tmp/nbd.log)"; }
/usr/bin/e2fsck -fn /dev/nbd0 >/tmp/fsck.log 2>&1 || { stop_servers; fail "clone fs not clean: $(tail -n 2 /tmp/fsck.log)"; }
mount -t ext4 -o ro /dev/nbd0 /mnt/clone || { stop_servers; fail "remount clone"; }
[ "$(md5file /mnt/clone/new.dat)" = "$new_sum" ] || { stop_servers; fail "the write to the clone was lost"; }
umount /mnt/clone
/usr/bin/nbd-client -d /dev/nbd0 >/dev/null 2>&1
timeout 120 hydrate status c --wait --interval 0.5 --control /tmp/clone.sock >/tmp/status.log 2>&1 ||
  { stop_servers; fail "the clone did not complete: $(tail -n 2 /tmp/status.log)"; }
s2pid=$(cat /tmp/s2.pid)
stop_servers
n=0
while kill -0 "$s2pid" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -0 "$s2pid" 2>/dev/null && fail "the clone server did not stop on SIGTERM"
hydrate meta check /tmp/c.meta >/tmp/meta.log 2>&1 || fail "metadata: $(cat /tmp/meta.log)"
grep -q "flags complete" /tmp/meta.log || fail "the committed metadata is not complete: $(cat /tmp/meta.log)"
/usr/bin/e2fsck -fn /dev/vdd >/tmp/fsck.log 2>&1 || fail "destination fs not clean: $(tail -n 2 /tmp/fsck.log)"
mount -t ext4 -o ro /dev/vdd /mnt/clone || fail "mounting the destination alone"
(cd /mnt/clone && md5sum -c /tmp/pre.md5 >/tmp/check.log 2>&1) || fail "destination files differ from the snapshot's"
[ "$(md5file /mnt/clone/new.dat)" = "$new_sum" ] || fail "the write is not on the destination"
umount /mnt/clone
umount /mnt/origin
true
