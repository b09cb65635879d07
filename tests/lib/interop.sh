# Shared helpers for the shell interop tests (source this file; it is not a script).
#
#   . "$(dirname "$0")/../lib/interop.sh"
#   interop_init                       # temp dir $T, cleanup trap, PATH, server choice
#   server_start disk "$T/disk.img"    # sets SOCK, URI (nbd+unix:///disk?socket=…), SERVER_PID
#   run_case list_names_export case_fn # runs case_fn in a subshell, records pass/fail/skip
#   interop_finish                     # prints the summary, exits 1 if a case failed
#
# The server under test is `hydrate serve` or `nbdkit file` (INTEROP_SERVER=hydrate|nbdkit),
# started through tests/lib/interop-server. Results go to stdout and, when INTEROP_RESULTS
# names a file, as "pass|fail|skip SCRIPT CASE" lines for test_against_nbdkit.sh.

INTEROP_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_SERVER=${INTEROP_SERVER:-hydrate}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120}
SCRIPT_NAME=$(basename "$0")
SCRIPT_NAME=${SCRIPT_NAME%.*}
export INTEROP_SERVER

_pids=()      # background processes to stop at exit
_cleanups=()  # commands to run at exit, last registered first
_passed=0
_failed=0
_skipped=0
_failed_names=()

interop_init() {
  set -uo pipefail
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH  # nbdsh and `import nbd` need Debian's python3
  case "$INTEROP_SERVER" in
    hydrate)
      if [ -z "${HYDRATE_BIN:-}" ] || [ ! -x "$HYDRATE_BIN" ]; then
        echo "HYDRATE_BIN must name the built hydrate binary (got '${HYDRATE_BIN:-}')" >&2
        exit 1
      fi
      ;;
    nbdkit) command -v nbdkit >/dev/null || { echo "nbdkit is not installed" >&2; exit 1; } ;;
    *) echo "INTEROP_SERVER must be hydrate or nbdkit, not '$INTEROP_SERVER'" >&2; exit 1 ;;
  esac
  T=$(mktemp -d "${TMPDIR:-/tmp}/interop-$SCRIPT_NAME.XXXXXX")
  trap _interop_cleanup EXIT
  trap 'exit 130' INT TERM
  echo "# $SCRIPT_NAME against $INTEROP_SERVER, work dir $T"
}

# at_exit CMD…: run CMD when the script exits (unmounts, detaching loop devices).
at_exit() { _cleanups+=("$*"); }

_interop_cleanup() {
  _stop_since 0 0
  [ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
}

# _stop_since PID_INDEX CLEANUP_INDEX: runs the cleanups and stops the processes registered
# after those indexes (a case's subshell cleans up only what it started).
_stop_since() {
  local i pid
  for ((i = ${#_cleanups[@]} - 1; i >= $2; i--)); do
    eval "${_cleanups[i]}" >/dev/null 2>&1 || true
  done
  for pid in "${_pids[@]:$1}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${_pids[@]:$1}"; do
    _wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
  done
}

# _wait_gone PID SECONDS: true once PID has exited.
_wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
  return 0
}

# ---------------------------------------------------------------------------------------------
# Assertions: each prints what was wrong and fails the current case.

fail() {
  echo "ASSERTION FAILED: $*" >&2
  exit 1
}

assert_eq() {  # assert_eq ACTUAL EXPECTED WHAT
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

assert_contains() {  # assert_contains HAYSTACK NEEDLE WHAT
  [[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $1"
}

assert_same_file() {  # assert_same_file A B WHAT
  local out
  out=$(cmp "$1" "$2" 2>&1) || fail "$3: $1 and $2 differ: $out"
}

# assert_status EXPECTED WHAT CMD…: runs CMD under timeout and checks its exit status.
assert_status() {
  local expected=$1 what=$2 status=0
  shift 2
  client "$@" >"$T/last.out" 2>"$T/last.err" || status=$?
  [ "$status" = "$expected" ] ||
    fail "$what: '$*' exited $status, expected $expected; stderr: $(head -c 2000 "$T/last.err")"
}

# ---------------------------------------------------------------------------------------------
# Processes

# client CMD…: every client runs bounded in time.
client() { timeout --kill-after=10 "$CLIENT_TIMEOUT" "$@"; }

# free_tcp_port: prints a port on 127.0.0.1 that nothing listens on right now.
free_tcp_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# server_start NAME PATH [ro] [extra interop-server args…]: starts the server under test on a
# Unix socket in $T and waits until it answers. Sets SOCK, URI and SERVER_PID.
server_start() {
  SOCK="$T/$1.sock"
  rm -f "$SOCK"
  _server_start "unix:$SOCK" "nbd+unix:///$1?socket=$SOCK" "$@"
}

# server_start_tcp NAME PATH [ro] [args…]: the same on 127.0.0.1 and a free port (sets PORT).
server_start_tcp() {
  PORT=$(free_tcp_port)
  _server_start "tcp://127.0.0.1:$PORT" "nbd://127.0.0.1:$PORT/$1" "$@"
}

_server_start() {
  local listen=$1 uri=$2 name=$3 path=$4
  local spec="$name=$path"
  shift 4
  if [ "${1:-}" = ro ]; then
    spec="$spec:ro"
    shift
  fi
  URI=$uri
  SERVER_LOG="$T/$name.server.log"
  "$INTEROP_LIB/interop-server" --listen "$listen" --export "$spec" --config-dir "$T" "$@" \
    >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  _pids+=("$SERVER_PID")
  wait_ready "$URI" "$SERVER_PID" "$SERVER_LOG"
}

# wait_ready URI PID LOG: polls until the server at URI completes a handshake (30 s at most).
wait_ready() {
  local uri=$1 pid=$2 log=$3 deadline=$((SECONDS + 30))
  until timeout 5 nbdinfo --size "$uri" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server exited before it answered; its output:" >&2
      cat "$log" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "server did not answer on $uri within 30 s; its output:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# server_stop PID [SECONDS]: SIGTERM, then wait; prints nothing, returns the exit status
# (or 124 if it had to be killed after SECONDS, default 30).
server_stop() {
  local pid=$1 limit=${2:-30}
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! _wait_gone "$pid" "$limit"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  local status=0
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}

# ---------------------------------------------------------------------------------------------
# Data

# make_random FILE MIB: FILE filled with MIB MiB of random bytes.
make_random() { head -c "$(($2 << 20))" /dev/urandom >"$1"; }

# make_sparse FILE SIZE_MIB: a sparse image with data at known places, printed by sparse_layout.
# Extents are 64 KiB aligned so every filesystem reports them exactly through SEEK_HOLE.
make_sparse() {
  local file=$1 mib=$2
  rm -f "$file"
  truncate -s "${mib}M" "$file"
  head -c 65536 /dev/urandom | dd of="$file" bs=64K seek=16 conv=notrunc status=none       # 1 MiB
  head -c 2097152 /dev/urandom | dd of="$file" bs=1M seek=5 conv=notrunc status=none       # 5-7 MiB
  head -c 65536 /dev/urandom | dd of="$file" bs=64K seek=$((mib * 16 - 1)) conv=notrunc status=none
}

# sparse_layout SIZE_MIB: the data/hole layout make_sparse writes, as "offset length data|hole".
sparse_layout() {
  local size=$(($1 << 20)) k=65536 m=1048576
  printf '%s\n' "0 $m hole" "$m $k data" "$((m + k)) $((4 * m - k)) hole" "$((5 * m)) $((2 * m)) data" \
    "$((7 * m)) $((size - 7 * m - k)) hole" "$((size - k)) $k data"
}

# ---------------------------------------------------------------------------------------------
# Cases

# run_case NAME FUNCTION: runs FUNCTION in a subshell with errexit; it passes if it returns 0,
# is skipped if it exits 77 (call `skip REASON`), and fails otherwise.
run_case() {
  local name=$1 fn=$2 status result
  (
    # Traps are not inherited by subshells: stop what this case started when it ends.
    trap "_stop_since ${#_pids[@]} ${#_cleanups[@]}" EXIT
    set -e
    "$fn"
  )
  # Not `( … ) || status=$?`: errexit is ignored inside a subshell that is part of a || list.
  status=$?
  case "$status" in
    0) result=pass; _passed=$((_passed + 1)); echo "ok - $name" ;;
    77) result=skip; _skipped=$((_skipped + 1)); echo "ok - $name # SKIP" ;;
    *)
      result=fail
      _failed=$((_failed + 1))
      _failed_names+=("$name")
      echo "not ok - $name (exit $status)"
      ;;
  esac
  if [ -n "${INTEROP_RESULTS:-}" ]; then
    echo "$result $SCRIPT_NAME $name" >>"$INTEROP_RESULTS"
  fi
}

skip() {
  echo "SKIP: $*" >&2
  exit 77
}

interop_finish() {
  echo "# $SCRIPT_NAME against $INTEROP_SERVER: $_passed passed, $_failed failed, $_skipped skipped"
  if [ "$_failed" -gt 0 ]; then
    echo "# failed: ${_failed_names[*]}"
    exit 1
  fi
  if [ "$_passed" -eq 0 ]; then
    echo "# no case passed" >&2
    exit 1
  fi
  exit 0
}
