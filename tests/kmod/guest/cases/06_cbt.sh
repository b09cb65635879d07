# Changed-block tracking: the reported chunks are exactly the chunks written (a superset of the
# bytes written, rounded to whole chunks and no more); a snapshot taken with --reset-cbt keeps
# the old map and restarts the live one; `cbt --reset` clears it; and applying the snapshot's
# changed chunks to the previous image reproduces the snapshot (an incremental backup).
dev=/dev/vdb
dd if=/dev/urandom of=$dev bs=1M count=64 oflag=direct 2>/dev/null || fail "fill $dev"
snap_create $dev
id=$SNAP_ID
[ -e /dev/hydrate-snap$id ] && fail "CBT-only tracking created a snapshot device"
dd if=$dev of=/tmp/base.img bs=1M iflag=direct 2>/dev/null
out=$(hydrate snap cbt $id) || fail "cbt: $out"
[ "$(json_num dirty_chunks "$out")" = 0 ] || fail "fresh CBT is not empty: $out"

random_ranges 7 60 67108864 >/tmp/w1
write_ranges $dev /tmp/w1
written_chunks /tmp/w1 >/tmp/w1.chunks
out=$(hydrate snap cbt $id) || fail "cbt: $out"
cbt_chunks "$out" >/tmp/cbt1.chunks
missing=$(awk 'NR == FNR { r[$1] = 1; next } !($1 in r)' /tmp/cbt1.chunks /tmp/w1.chunks | wc -l)
extra=$(awk 'NR == FNR { w[$1] = 1; next } !($1 in w)' /tmp/w1.chunks /tmp/cbt1.chunks | wc -l)
[ "$missing" = 0 ] || fail "CBT misses $missing of $(wc -l </tmp/w1.chunks) written chunks ($(json_num dirty_chunks "$out") reported; first ranges: $(head -n 2 /tmp/w1 | tr '\n' ' '), first reported: $(head -n 3 /tmp/cbt1.chunks | tr '\n' ' '))"
[ "$extra" = 0 ] || fail "CBT reports $extra chunks that were not written"
log "CBT: $(wc -l </tmp/w1.chunks) chunks written, all reported, none extra"

# A snapshot that takes the CBT with it and restarts the live map.
snap_create $dev --store-file /tmp/cbt.cow --store-size 32M --reset-cbt
out=$(hydrate snap cbt $id --snapshot) || fail "cbt --snapshot: $out"
cbt_chunks "$out" | cmp -s - /tmp/cbt1.chunks || fail "the snapshot's CBT differs from the live CBT before the reset"
out=$(hydrate snap cbt $id) || fail "cbt: $out"
[ "$(json_num dirty_chunks "$out")" = 0 ] || fail "live CBT not empty after --reset-cbt: $out"
[ "$(json_num generation "$out")" = 1 ] || fail "CBT generation did not advance: $out"

# Incremental backup: base image + the snapshot's changed chunks == the snapshot.
out=$(hydrate snap cbt $id --snapshot)
for c in $(cbt_chunks "$out" | uniq); do
  dd if="$SNAP_DEV" of=/tmp/base.img bs=4096 skip=$c seek=$c count=1 conv=notrunc iflag=direct 2>/dev/null
done
[ "$(md5file /tmp/base.img)" = "$(md5dev "$SNAP_DEV")" ] || fail "base + changed chunks != snapshot"

random_ranges 11 40 67108864 >/tmp/w2
write_ranges $dev /tmp/w2
written_chunks /tmp/w2 >/tmp/w2.chunks
out=$(hydrate snap cbt $id --reset) || fail "cbt --reset: $out"
cbt_chunks "$out" | uniq | cmp -s - /tmp/w2.chunks || fail "live CBT after the snapshot is not the second write set"
out=$(hydrate snap cbt $id)
[ "$(json_num dirty_chunks "$out")" = 0 ] || fail "live CBT not empty after cbt --reset: $out"
# The snapshot's map is frozen: later writes do not reach it.
out=$(hydrate snap cbt $id --snapshot)
cbt_chunks "$out" | cmp -s - /tmp/cbt1.chunks || fail "the snapshot's CBT changed after it was taken"
hydrate snap destroy $id >/dev/null || fail "destroy"
true
