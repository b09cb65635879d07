# Destroy under load: writers keep going while the snapshot is refused destruction (open), then
# destroyed, then force-destroyed while being read; no write fails or is lost; then rmmod and
# load the module again.
dev=/dev/vdb
dd if=/dev/urandom of=/tmp/expect bs=1M count=64 2>/dev/null
dd if=/tmp/expect of=$dev bs=1M oflag=direct 2>/dev/null || fail "fill $dev"

writer() { # writer HALF: random 4 KiB writes in one half of the device until /tmp/stop
  n=0
  while [ ! -e /tmp/stop ]; do
    blk=$(($1 * 8192 + RANDOM % 8192))
    dd if=/dev/urandom of=/tmp/blk$1 bs=4096 count=1 2>/dev/null
    if ! dd if=/tmp/blk$1 of=$dev bs=4096 seek=$blk conv=notrunc oflag=direct 2>/dev/null; then
      echo "write $n at $blk" >>/tmp/write.failed
    fi
    dd if=/tmp/blk$1 of=/tmp/expect bs=4096 seek=$blk conv=notrunc 2>/dev/null
    n=$((n + 1))
  done
  echo $n >/tmp/writer$1.count
}
writer 0 &
w0=$!
writer 1 &
w1=$!

snap_create $dev --store-file /tmp/d.cow --store-size 64M
exec 3<"$SNAP_DEV"
out=$(hydrate snap destroy "$SNAP_ID" 2>&1) && fail "destroy succeeded while $SNAP_DEV was open"
echo "$out" | grep -q "in use" || fail "busy destroy gave no clear message: $out"
exec 3<&-
sleep 1
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy under write load"

snap_create $dev --store-file /tmp/d2.cow --store-size 64M
(while [ ! -e /tmp/stop.reader ]; do dd if="$SNAP_DEV" of=/dev/null bs=64k iflag=direct 2>/dev/null; done) &
reader=$!
sleep 2
hydrate snap destroy "$SNAP_ID" --force >/dev/null || fail "forced destroy while reading"
touch /tmp/stop.reader
wait $reader
sleep 1
touch /tmp/stop
wait $w0 $w1
[ -e /tmp/write.failed ] && fail "origin writes failed: $(head -n 3 /tmp/write.failed)"
[ "$(md5dev $dev)" = "$(md5file /tmp/expect)" ] || fail "origin lost writes"
log "writers made $(cat /tmp/writer0.count) + $(cat /tmp/writer1.count) writes"

rmmod hydrate_snap || fail "rmmod hydrate_snap"
[ -e /dev/hydrate-snap-ctl ] && fail "control device survived rmmod"
out=$(hydrate snap list 2>&1) && fail "list worked without the module"
echo "$out" | grep -q "not loaded" || fail "no clear message without the module: $out"
insmod /lib/modules/hydrate_snap.ko || fail "loading the module again"
hydrate snap version >/dev/null || fail "version after reload"
snap_create $dev --store-file /tmp/d3.cow --store-size 8M
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy after reload"
true
