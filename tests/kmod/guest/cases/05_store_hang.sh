# A COW store that stops answering (an NBD device whose server is stopped): after the module's
# cow_timeout_ms the snapshot is invalidated with a reason and the origin write completes; once
# the store answers again, the snapshot is destroyed cleanly.
[ -x /usr/bin/nbd-server ] || skip "nbd-server is not in the initramfs (nbd-server missing on the host)"
dev=/dev/vdb
dd if=/dev/urandom of=/tmp/expect bs=1M count=64 2>/dev/null
dd if=/tmp/expect of=$dev bs=1M oflag=direct 2>/dev/null || fail "fill $dev"
truncate -s 32M /tmp/store.img
cat >/tmp/nbd-server.conf <<CONF
[generic]
listenaddr = 127.0.0.1
port = 10811
user = root
group = root
[store]
exportname = /tmp/store.img
CONF
/usr/bin/nbd-server -C /tmp/nbd-server.conf -p /tmp/nbd-server.pid >/tmp/nbd-server.log 2>&1 ||
  fail "nbd-server: $(cat /tmp/nbd-server.log)"
n=0
until /usr/bin/nbd-client 127.0.0.1 10811 /dev/nbd2 -N store >/tmp/nbd.log 2>&1; do
  n=$((n + 1))
  [ $n -lt 20 ] || fail "nbd-client: $(cat /tmp/nbd.log)"
  sleep 0.5
done
# nbd-server forks a child per connection: stop and resume all of them.
servers() { pidof nbd-server; }
cleanup_store() {
  kill -CONT $(servers) 2>/dev/null
  /usr/bin/nbd-client -d /dev/nbd2 >/dev/null 2>&1
  kill $(servers) 2>/dev/null
}
old=$(cat /sys/module/hydrate_snap/parameters/cow_timeout_ms)
echo 3000 >/sys/module/hydrate_snap/parameters/cow_timeout_ms

snap_create $dev --store /dev/nbd2
kill -STOP $(servers)
start=$(cut -d. -f1 /proc/uptime)
dd if=/dev/urandom of=/tmp/blk bs=64k count=4 2>/dev/null
dd if=/tmp/blk of=$dev bs=64k seek=10 conv=notrunc oflag=direct 2>/dev/null || { cleanup_store; fail "origin write failed"; }
dd if=/tmp/blk of=/tmp/expect bs=64k seek=10 conv=notrunc 2>/dev/null
took=$(($(cut -d. -f1 /proc/uptime) - start))
log "origin write with a stopped store took ${took}s"
info=$(hydrate snap list)
echo "$info" | grep -q '"reason": "COW store did not answer in time"' || { cleanup_store; fail "not invalidated by the hang: $info"; }
[ "$(md5dev $dev)" = "$(md5file /tmp/expect)" ] || { cleanup_store; fail "origin does not read back"; }
kill -CONT $(servers)
hydrate snap destroy "$SNAP_ID" >/dev/null || { cleanup_store; fail "destroy after the store came back"; }
echo "$old" >/sys/module/hydrate_snap/parameters/cow_timeout_ms
cleanup_store
true
