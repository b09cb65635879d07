# Serving a snapshot: `hydrate serve` exports /dev/hydrate-snapN read-only; over NBD it reads as
# the snapshot, and its metadata context qemu:dirty-bitmap:cbt (read with nbdinfo --map, a real
# peer) flags exactly the chunks changed before the snapshot.
hydrate serve --help >/dev/null 2>&1 || skip "hydrate serve is not in this build"
[ -x /usr/bin/nbdinfo ] || skip "nbdinfo is not in the initramfs (libnbd-bin missing on the host)"
dev=/dev/vdb
dd if=/dev/urandom of=$dev bs=1M count=64 oflag=direct 2>/dev/null || fail "fill $dev"
snap_create $dev
random_ranges 5 30 67108864 >/tmp/w1
write_ranges $dev /tmp/w1
written_chunks /tmp/w1 >/tmp/w1.chunks
snap_create $dev --store-file /tmp/serve.cow --store-size 32M --reset-cbt
dd if=/dev/urandom of=$dev bs=4096 count=256 seek=100 conv=notrunc oflag=direct 2>/dev/null
snap_sum=$(md5dev "$SNAP_DEV")

hydrate serve --listen tcp://127.0.0.1:10809 --export "snap=$SNAP_DEV:ro" --pidfile /tmp/s1.pid \
  >/tmp/s1.log 2>&1 &
n=0
while [ ! -s /tmp/s1.pid ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
[ -s /tmp/s1.pid ] || fail "hydrate serve did not start: $(tail -n 2 /tmp/s1.log)"
stop() { kill "$(cat /tmp/s1.pid)" 2>/dev/null; }

/usr/bin/nbd-client 127.0.0.1 10809 /dev/nbd1 -N snap >/tmp/nbd.log 2>&1 || { stop; fail "nbd-client: $(cat /tmp/nbd.log)"; }
sum=$(md5dev /dev/nbd1)
/usr/bin/nbd-client -d /dev/nbd1 >/dev/null 2>&1
[ "$sum" = "$snap_sum" ] || { stop; fail "the export does not read as the snapshot"; }

if ! /usr/bin/nbdinfo --map=qemu:dirty-bitmap:cbt nbd://127.0.0.1:10809/snap >/tmp/map.txt 2>/tmp/map.err; then
  stop
  grep -q "does not support metadata context" /tmp/map.err &&
    skip "hydrate serve does not offer qemu:dirty-bitmap:cbt yet (with_snapshot_cbt is not wired in)"
  fail "nbdinfo --map: $(cat /tmp/map.err)"
fi
stop
awk '$3 == 1 { for (c = $1 / 4096; c < ($1 + $2) / 4096; c++) print c }' /tmp/map.txt >/tmp/map.chunks
cmp -s /tmp/map.chunks /tmp/w1.chunks ||
  fail "qemu:dirty-bitmap:cbt flags $(wc -l </tmp/map.chunks) chunks, $(wc -l </tmp/w1.chunks) were written"
true
