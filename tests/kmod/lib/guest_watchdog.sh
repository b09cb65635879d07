# Guest side (busybox sh), sourced by the test and benchmark guests as /watchdog.sh: what to do
# when something in the guest stops making progress. A task stuck in an interruptible sleep
# (fio waiting for an I/O that never completes) escapes the kernel's hung-task detector, so the
# guests time their own steps and, on a hang, print enough kernel state to the serial console
# to tell where it stopped.

# Blocked tasks and every user process with their kernel stacks, what the block layer holds
# for every virtio disk, and the module's last messages, on the console (also from inside a
# command substitution).
dump_kernel_state() {
  {
    echo "=== kernel state: $*"
    echo 8 >/proc/sys/kernel/printk
    echo w >/proc/sysrq-trigger
    # User processes sleep interruptibly where "w" does not look: their kernel stacks.
    for p in /proc/[0-9]*; do
      [ -n "$(tr -d '\0' <"$p/cmdline" 2>/dev/null)" ] || continue
      echo "task ${p#/proc/} $(cat "$p/comm") state $(sed -n 's/^State:[[:space:]]*//p' "$p/status"):"
      sed 's/^/    /' "$p/stack" 2>/dev/null | head -n 12
    done
    [ -d /sys/kernel/debug/block ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
    for q in /sys/block/vd*; do
      d=${q##*/}
      echo "$d inflight (reads writes): $(cat "$q/inflight")"
      for f in state hctx0/state hctx0/busy hctx0/dispatch hctx0/tags; do
        [ -e "/sys/kernel/debug/block/$d/$f" ] || continue
        echo "$d $f: $(head -n 8 "/sys/kernel/debug/block/$d/$f" | tr '\n' ' ')"
      done
    done
    dmesg | grep -E 'hydrate_snap|WARNING|BUG' | tail -n 20
    echo "=== end of kernel state"
  } >/dev/console 2>&1
}

# kill_tree PID: SIGKILL to PID and every process below it, children first (so none is handed
# to init before it is found). Shell built-ins only: the guest has no pgrep.
kill_tree() {
  local kt_stat kt_line kt_ppid
  for kt_stat in /proc/[0-9]*/stat; do
    read -r kt_line <"$kt_stat" 2>/dev/null || continue
    # After the command name in parentheses: state, then the parent's pid.
    kt_ppid=${kt_line##*) }
    kt_ppid=${kt_ppid#* }
    [ "${kt_ppid%% *}" = "$1" ] || continue
    kt_stat=${kt_stat%/stat}
    kill_tree "${kt_stat#/proc/}"
  done
  kill -9 "$1" 2>/dev/null
}

# watchdog SECONDS NAME CMD...: runs CMD (a program or a shell function) and returns its status;
# if it is still running after SECONDS, dumps the kernel state and kills it and everything it
# started (status 137). A process stuck on an I/O that never completes may not die: do not put
# a watchdog inside a command substitution, which would wait for it; redirect to a file. The
# watcher sleeps in the background, so waiting costs the guest nothing.
watchdog() {
  wd_limit=$1 wd_name=$2
  shift 2
  "$@" &
  wd_pid=$!
  (
    sleep "$wd_limit"
    if kill -0 "$wd_pid" 2>/dev/null; then
      : >"/tmp/watchdog.$wd_pid"
      dump_kernel_state "$wd_name did not finish in ${wd_limit}s"
      kill_tree "$wd_pid"
    fi
  ) >/dev/null 2>&1 &
  wd_watcher=$!
  wait "$wd_pid"
  wd_status=$?
  kill "$wd_watcher" 2>/dev/null
  # Killing its children may let CMD end by itself before it is killed: the mark decides.
  if [ -e "/tmp/watchdog.$wd_pid" ]; then
    rm -f "/tmp/watchdog.$wd_pid"
    return 137
  fi
  return "$wd_status"
}
