# Host-side helpers shared by tests/kmod/run, bench/kmod/run and tests/vm/: build hydrate_snap.ko
# against Debian's 6.1 headers, pack an initramfs around a guest script, make disks, boot qemu
# (TCG). Source this file; every function prints what it does on failure and returns non-zero.

# hsnap_find_kver [--no-headers]: sets KVER to the newest /lib/modules/6.1.* — never the running
# kernel (the host runs something else). --no-headers: the caller builds no module, so only the
# kernel image and its modules must be there.
hsnap_find_kver() {
  local dir need_headers=1
  [[ ${1:-} == --no-headers ]] && need_headers=0
  dir=$(ls -d /lib/modules/6.1.* 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $dir ]]; then
    echo "no /lib/modules/6.1.* on this host: install linux-image-amd64 and linux-headers-amd64 (Debian 12)" >&2
    return 1
  fi
  KVER=${dir##*/}
  if [[ ! -e /boot/vmlinuz-$KVER ]]; then
    echo "/boot/vmlinuz-$KVER is missing: install linux-image-$KVER" >&2
    return 1
  fi
  if ((need_headers)) && [[ ! -d /lib/modules/$KVER/build ]]; then
    echo "/lib/modules/$KVER/build is missing: install linux-headers-$KVER" >&2
    return 1
  fi
}

# hsnap_build_module SRC_KMOD_DIR OUT_DIR: builds a copy, so the source tree stays clean.
hsnap_build_module() {
  local src=$1 out=$2
  rm -rf "$out" && mkdir -p "$out"
  cp -r "$src"/. "$out"/
  if ! make -s -C "/lib/modules/$KVER/build" M="$out" modules >"$out/build.log" 2>&1; then
    cat "$out/build.log" >&2
    echo "building hydrate_snap.ko against $KVER failed" >&2
    return 1
  fi
}

# Copies a binary and every library ldd lists (following symlinks) into ROOT.
hsnap_copy_binary() {
  local root=$1 bin=$2 dest=${3:-}
  [[ -n $dest ]] || dest=/usr/bin/$(basename "$bin")
  mkdir -p "$root$(dirname "$dest")"
  if [[ ${HSNAP_STRIP:-1} == 1 ]] && command -v strip >/dev/null; then
    strip -o "$root$dest" "$bin" 2>/dev/null || cp -L "$bin" "$root$dest"
  else
    cp -L "$bin" "$root$dest"
  fi
  local lib
  for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
    [[ -e $lib ]] || continue
    mkdir -p "$root/lib/x86_64-linux-gnu"
    case $lib in
      */ld-linux-x86-64.so.2) mkdir -p "$root/lib64" && cp -L "$lib" "$root/lib64/" ;;
      *) [[ -e $root/lib/x86_64-linux-gnu/$(basename "$lib") ]] ||
           cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
    esac
  done
}

# The modules the kmod guests load (virtio disks, ext4, loop, nbd).
HSNAP_KMOD_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
                    virtio_blk crc32c_generic crc16 mbcache jbd2 ext4 loop nbd)

# hsnap_guest_modules MODULE...: the .ko files of MODULEs and everything they depend on, in load
# order (busybox insmod resolves nothing).
hsnap_guest_modules() {
  local m
  for m in "$@"; do
    modprobe -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++'
}

# hsnap_make_guest_root ROOT GUEST_DIR [MODULE...]: a guest's root tree in ROOT: busybox, the
# MODULEs with their dependencies (decompressed) and their load order in /lib/modules/order,
# /etc/passwd and /etc/group, /watchdog.sh, then GUEST_DIR's files on top (its /init executable).
hsnap_make_guest_root() {
  local root=$1 guest=$2
  shift 2
  rm -rf "$root" && mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,lib/modules,usr/bin,results}
  cp /bin/busybox "$root/bin/busybox"
  local mod order=()
  if (($#)); then
    for mod in $(hsnap_guest_modules "$@"); do
      case $mod in
        *.ko.xz) xz -dc "$mod" >"$root/lib/modules/$(basename "${mod%.xz}")" ;;
        *.ko.zst) zstd -qdc "$mod" >"$root/lib/modules/$(basename "${mod%.zst}")" ;;
        *) cp "$mod" "$root/lib/modules/" ;;
      esac
      mod=$(basename "$mod")
      order+=("${mod%.ko*}.ko")
    done
    if ((${#order[@]} == 0)); then
      echo "modprobe -S $KVER found none of the modules $* (is kmod installed?)" >&2
      return 1
    fi
    printf '%s\n' "${order[@]}" >"$root/lib/modules/order"
  fi
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  cp "$(dirname "${BASH_SOURCE[0]}")/guest_watchdog.sh" "$root/watchdog.sh"
  cp -r "$guest"/. "$root/"
  chmod +x "$root"/init
}

# hsnap_pack_initramfs ROOT OUT: ROOT as a gzip'd newc cpio archive.
hsnap_pack_initramfs() {
  (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}

# hsnap_make_initramfs ROOT OUT GUEST_DIR HYDRATE_BIN MODULE_KO [extra binaries...]: the kmod
# guests' initramfs: HSNAP_KMOD_MODULES, hydrate_snap.ko, hydrate, e2fsprogs and nbd-client.
hsnap_make_initramfs() {
  local root=$1 out=$2 guest=$3 hydrate=$4 ko=$5
  shift 5
  hsnap_make_guest_root "$root" "$guest" "${HSNAP_KMOD_MODULES[@]}" || return 1
  cp "$ko" "$root/lib/modules/hydrate_snap.ko"
  hsnap_copy_binary "$root" "$hydrate" /usr/bin/hydrate
  local b
  for b in /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/nbd-client /usr/sbin/blkdiscard "$@"; do
    [[ -x $b ]] || { echo "missing $b on the host" >&2; return 1; }
    hsnap_copy_binary "$root" "$b" "/usr/bin/$(basename "$b")"
  done
  [[ -e /etc/mke2fs.conf ]] && cp /etc/mke2fs.conf "$root/etc/"
  hsnap_pack_initramfs "$root" "$out"
}

# hsnap_boot_qemu LOG TIMEOUT_S CMDLINE_EXTRA INITRD [disk images...]: boots Debian's own 6.1
# kernel under TCG (KVM does not work on this host) with each image as a virtio disk.
# HSNAP_DISK_CACHE: qemu cache mode of the disks (tests: unsafe; the benchmark: none, so the
# host page cache does not turn disk I/O into memory copies).
hsnap_boot_qemu() {
  local log=$1 limit=$2 extra=$3 initrd=$4
  shift 4
  local drives=() img
  for img in "$@"; do
    drives+=(-drive "file=$img,if=virtio,format=raw,cache=${HSNAP_DISK_CACHE:-unsafe},discard=unmap")
  done
  timeout --kill-after=10 "$limit" qemu-system-x86_64 -accel tcg -cpu max -m "${HSNAP_GUEST_MEM:-1024}" \
    -smp "${HSNAP_SMP:-1}" -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "/boot/vmlinuz-$KVER" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 oops=panic softlockup_panic=1 hung_task_panic=1 hung_task_timeout_secs=60 quiet $extra" \
    "${drives[@]}" </dev/null 2>&1 | tr -d '\r' >"$log"
  return "${PIPESTATUS[0]}"
}

# hsnap_print_kernel_state SERIAL_LOG: the kernel-state dumps a guest watchdog wrote (see
# guest_watchdog.sh), if any; returns 1 when there are none.
hsnap_print_kernel_state() {
  grep -q '^=== kernel state' "$1" || return 1
  echo "---- kernel state dumped by the guest's watchdog ----"
  sed -n '/^=== kernel state/,/^=== end of kernel state/p' "$1"
  echo "-----------------------------------------------------"
}
