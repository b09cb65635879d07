# Shared helpers for the plugin's shell tests (source after tests/lib/interop.sh and
# interop_init): where the built plugin is, and nbdkit running it on a Unix socket in $T.

# The plugin under test: HYDRATE_PLUGIN, else the one in HYDRATE_BUILD_DIR.
PLUGIN=${HYDRATE_PLUGIN:-${HYDRATE_BUILD_DIR:-}/plugins/nbdkit/nbdkit-hydrate-plugin.so}
if [ ! -f "$PLUGIN" ]; then
  echo "the nbdkit plugin is not built: '$PLUGIN' does not exist (set HYDRATE_BUILD_DIR)" >&2
  exit 1
fi
command -v nbdkit >/dev/null || { echo "nbdkit is not installed" >&2; exit 1; }

# nbdkit is not built with sanitizers: a sanitized plugin needs its runtime preloaded.
_sanitizer_runtime=$(ldd "$PLUGIN" 2>/dev/null | awk '$1 ~ /^lib(asan|ubsan|tsan)/ { print $3 }' | tr '\n' ' ')
if [ -n "$_sanitizer_runtime" ]; then
  export LD_PRELOAD="$_sanitizer_runtime" ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
fi

# plugin_start NAME [NBDKIT_OPTION…] KEY=VALUE…: nbdkit running the plugin on $T/NAME.sock in
# the foreground (options such as --filter=stats or -r come before the keys), stopped at the
# end of the case. Sets SOCK, URI, SERVER_PID, SERVER_LOG.
plugin_start() {
  local name=$1 options=()
  shift
  while [[ ${1:-} == -* ]]; do
    options+=("$1")
    shift
  done
  SOCK="$T/$name.sock"
  URI="nbd+unix:///$name?socket=$SOCK"
  SERVER_LOG="$T/$name.nbdkit.log"
  rm -f "$SOCK"
  nbdkit -f --exit-with-parent -U "$SOCK" "${options[@]}" "$PLUGIN" "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  _pids+=("$SERVER_PID")
  wait_ready "$URI" "$SERVER_PID" "$SERVER_LOG"
}

# json_get FILE PYTHON_EXPR: evaluates an expression over the parsed JSON (as `j`).
json_get() {
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
